"""Which subword features help? A PyTorch fastText-style model on a text split (the ablation behind
the tokenizer's subword defaults; Benchmarks/README.md, "Text classification vs scikit-learn").

Model: nn.EmbeddingBag(mean) over a text's word ids (vocabulary of the 20,000 most frequent training
words, lower-cased, words and punctuation split), plus optionally hashed character n-grams of
"<word>" and hashed word bigrams (CRC-32 into buckets), then a linear layer; AdamW (weight decay
0.1), cosine schedule, batch 64, 1 thread, seed 0. Prints validation and test accuracy every 5 epochs.

    python text_fasttext_ablation.py SPLIT.csv [--char-buckets 100000] [--ngrams 3,5]
                                              [--bigram-buckets 100000] [--epochs 15] [--lr 0.02]

SPLIT.csv comes from `naslab datasets export fortunes --seed 1 --validation-split 0.1 --output SPLIT.csv`.
Needs torch (`pip install "torch==2.13.0+cpu"`).
"""
import argparse
import csv
import random
import re
import sys
import time
import zlib
from collections import Counter

import torch

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("csv")
parser.add_argument("--char-buckets", type=int, default=0, help="0: no character n-grams")
parser.add_argument("--ngrams", default="2,5", help="n-gram lengths min,max")
parser.add_argument("--bigram-buckets", type=int, default=0, help="0: no word bigrams")
parser.add_argument("--dim", type=int, default=64)
parser.add_argument("--epochs", type=int, default=15)
parser.add_argument("--lr", type=float, default=0.005)
args = parser.parse_args()
torch.set_num_threads(1)
torch.manual_seed(0)
random.seed(0)

csv.field_size_limit(sys.maxsize)
texts = {"train": [], "validation": [], "test": []}
labels = {k: [] for k in texts}
with open(args.csv, newline="", encoding="utf-8") as f:
    for row in csv.reader(f):
        if row[0] != "split":
            texts[row[0]].append(row[2])
            labels[row[0]].append(row[1])
classes = sorted(set(labels["train"]))
class_index = {c: i for i, c in enumerate(classes)}


def tokenize(s):
    return re.findall(r"\w+|[^\w\s]", s.lower())


counts = Counter(w for t in texts["train"] for w in tokenize(t))
vocabulary = {w: i + 2 for i, (w, _) in enumerate(counts.most_common(20000))}   # 0 padding, 1 unknown
words = 20002
low, high = map(int, args.ngrams.split(","))


def features(text):
    tokens = tokenize(text)[:128]
    ids = [vocabulary.get(w, 1) for w in tokens]
    if args.char_buckets:
        for w in tokens:
            s = "<" + w + ">"
            ids += [words + zlib.crc32(s[i:i + n].encode()) % args.char_buckets
                    for n in range(low, high + 1) for i in range(len(s) - n + 1)]
    if args.bigram_buckets:
        ids += [words + args.char_buckets + zlib.crc32((a + " " + b).encode()) % args.bigram_buckets
                for a, b in zip(tokens, tokens[1:])]
    return ids


data = {k: ([features(t) for t in texts[k]], torch.tensor([class_index[c] for c in labels[k]])) for k in texts}
embedding = torch.nn.EmbeddingBag(words + args.char_buckets + args.bigram_buckets, args.dim, mode="mean")
linear = torch.nn.Linear(args.dim, len(classes))
parameters = list(embedding.parameters()) + list(linear.parameters())
optimizer = torch.optim.AdamW(parameters, lr=args.lr, weight_decay=0.1)
train_x, train_y = data["train"]
steps = args.epochs * ((len(train_x) + 63) // 64)
schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)


def bags(x, indices):
    flat, offsets = [], []
    for i in indices:
        offsets.append(len(flat))
        flat += x[i]
    return torch.tensor(flat), torch.tensor(offsets)


def accuracy(split):
    x, y = data[split]
    with torch.no_grad():
        return (linear(embedding(*bags(x, range(len(x))))).argmax(1) == y).float().mean().item()


start = time.time()
for epoch in range(args.epochs):
    order = list(range(len(train_x)))
    random.shuffle(order)
    for s in range(0, len(order), 64):
        batch = order[s:s + 64]
        loss = torch.nn.functional.cross_entropy(linear(embedding(*bags(train_x, batch))), train_y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    if epoch % 5 == 4 or epoch == args.epochs - 1:
        print(f"epoch {epoch + 1}: validation {accuracy('validation'):.4f} test {accuracy('test'):.4f} ({time.time() - start:.0f} s)", flush=True)
