"""TF-IDF + linear models on a text split exported by `naslab datasets export` (see text-vs-sklearn.sh).

Input: CSV with columns split,label,text (split in train/validation/test). Features: TF-IDF of word
1–2-grams and char_wb 2–5-grams (sublinear tf), fitted on the training split only. Models: LinearSVC
and LogisticRegression, each trained on the training split for every C of a small grid; C is picked by
validation accuracy (ties: the smaller C), like NASLab picks its best candidate by validation accuracy,
and that model's test accuracy is reported (no refit on train+validation: NASLab trains on train only).
LogisticRegression is multinomial, solver saga with tol 1e-3 (a convergence warning is printed if it stops early).

    python text_sklearn.py SPLIT.csv

Last lines: `sklearn linearsvc test accuracy: <x>`, `sklearn logreg test accuracy: <x>`,
`sklearn best test accuracy: <x>` (the higher of the two test accuracies: the stronger baseline).
"""
import argparse
import csv
import sys
import time

import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("csv", help="split,label,text CSV from `naslab datasets export`")
parser.add_argument("--svc-c", default="0.03,0.1,0.3,1,3", help="C grid for LinearSVC")
parser.add_argument("--logreg-c", default="1,3,10,30,100", help="C grid for LogisticRegression")
parser.add_argument("--models", default="linearsvc,logreg",
                    help="models to fit (comma-separated subset of linearsvc,logreg); a model left out prints nan")
args = parser.parse_args()

csv.field_size_limit(sys.maxsize)
texts = {"train": [], "validation": [], "test": []}
labels = {"train": [], "validation": [], "test": []}
with open(args.csv, newline="", encoding="utf-8") as f:
    reader = csv.reader(f)
    header = next(reader)
    if header != ["split", "label", "text"]:
        sys.exit(f"{args.csv}: expected the header split,label,text, got {header}")
    for row in reader:
        texts[row[0]].append(row[2])
        labels[row[0]].append(row[1])
classes = sorted(set(labels["train"]))
print(f"scikit-learn {sklearn.__version__}; {args.csv}: " + ", ".join(f"{len(v)} {k}" for k, v in texts.items())
      + f", {len(classes)} classes")

start = time.perf_counter()
word = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32)
char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, dtype=np.float32)


def features(split, fit=False):
    if fit:
        return sp.hstack([word.fit_transform(texts[split]), char.fit_transform(texts[split])]).tocsr()
    return sp.hstack([word.transform(texts[split]), char.transform(texts[split])]).tocsr()


X = {"train": features("train", fit=True)}
X["validation"] = features("validation")
X["test"] = features("test")
y = {k: np.array(v) for k, v in labels.items()}
print(f"tf-idf: {len(word.vocabulary_)} word + {len(char.vocabulary_)} char n-grams, "
      f"fitted on train in {time.perf_counter() - start:.1f} s")


def accuracy(model, split):
    return float(np.mean(model.predict(X[split]) == y[split]))


results = {"linearsvc": float("nan"), "logreg": float("nan")}
wanted = set(args.models.split(","))
if not wanted or not wanted <= set(results):
    sys.exit(f"--models must be a subset of linearsvc,logreg, got {args.models!r}")
for name, make, grid in [
    ("linearsvc", lambda c: LinearSVC(C=c, max_iter=10000, random_state=0), args.svc_c),
    # Multinomial; saga with tol 1e-3 reaches lbfgs's validation accuracy here ~10x faster (lbfgs: ~12 min for the grid).
    ("logreg", lambda c: LogisticRegression(C=c, solver="saga", tol=1e-3, max_iter=1000, random_state=0), args.logreg_c),
]:
    if name not in wanted:
        continue
    start = time.perf_counter()
    best = None
    for c in (float(v) for v in grid.split(",")):
        t = time.perf_counter()
        model = make(c).fit(X["train"], y["train"])
        val = accuracy(model, "validation")
        print(f"  {name} C={c:g}: validation accuracy {val:.4f} ({time.perf_counter() - t:.1f} s)")
        if best is None or val > best[1]:
            best = (c, val, model)
    c, val, model = best
    test = accuracy(model, "test")
    elapsed = time.perf_counter() - start
    results[name] = test
    print(f"sklearn {name}: C={c:g} (best on validation), validation accuracy {val:.4f}, test accuracy {test:.4f}, "
          f"grid of {len(grid.split(','))} fits in {elapsed:.1f} s")

print(f"sklearn linearsvc test accuracy: {results['linearsvc']:.4f}")
print(f"sklearn logreg test accuracy: {results['logreg']:.4f}")
print(f"sklearn best test accuracy: {max(v for v in results.values() if v == v):.4f}")
