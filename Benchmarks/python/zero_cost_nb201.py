"""NASLab's zero-cost proxies on NAS-Bench-201 cells vs NASLib's values and CIFAR-10 test accuracy.

Reads ../shared/benchmarks/nasbench201/ (not part of the repository): NASLib's
`naslib_zc_nasbench201_subset.json` (725 CIFAR-10 cells with NASLib's proxies) and
`nats_bench_tss_200ep.csv` (test accuracy after 200 epochs). Runs `naslab proxies --json` on the
cells and prints Spearman rank correlations.

CIFAR-10 is not on this machine, so the data-dependent proxies (naswot, jacov, snip, grad_norm)
run on a *stand-in* batch: Fashion-MNIST training images padded to 32x32 and repeated over
3 channels (`--data fashion`), or Gaussian noise with random labels (`--data noise`). Their
correlations are labelled as such; they are not the CIFAR-10 numbers NASLib reports.
"""
import argparse, csv, gzip, json, os, subprocess, sys, tempfile, time

import numpy as np

OPS = ["skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3"]


def nb201_string(key):
    d = [int(c) for c in key if c.isdigit()]
    o = [OPS[i] for i in d]
    return f"|{o[0]}~0|+|{o[1]}~0|{o[3]}~1|+|{o[2]}~0|{o[4]}~1|{o[5]}~2|"


def spearman(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]

    def ranks(x):
        order = np.argsort(x, kind="mergesort")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        for v in np.unique(x):           # average ranks of ties
            m = x == v
            if m.sum() > 1:
                r[m] = r[m].mean()
        return r
    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1]), int(ok.sum())


def stand_in_dataset(kind, path, count=2048, seed=0):
    import h5py
    rng = np.random.default_rng(seed)
    if kind == "noise":
        x = rng.normal(size=(count, 3, 32, 32)).astype(np.float32)
        y = rng.integers(0, 10, size=count)
    else:
        root = "/usr/share/datasets/fashion-mnist"
        with gzip.open(os.path.join(root, "train-images-idx3-ubyte.gz")) as f:
            images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:count]
        with gzip.open(os.path.join(root, "train-labels-idx1-ubyte.gz")) as f:
            y = np.frombuffer(f.read(), np.uint8, offset=8)[:count]
        x = np.zeros((len(images), 3, 32, 32), np.uint8)
        x[:, :, 2:30, 2:30] = images[:, None]
    with h5py.File(path, "w") as f:
        f["x"] = x
        f["y"] = y.astype(np.int64)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--naslab", default=".build/release/naslab")
    p.add_argument("--shared", default="../shared/benchmarks/nasbench201")
    p.add_argument("--limit", type=int, default=0, help="first N cells only (0: all 725)")
    p.add_argument("--data", choices=["none", "fashion", "noise"], default="fashion")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    raw = open(os.path.join(a.shared, "naslib_zc_nasbench201_subset.json")).read()
    naslib = json.loads(raw)["cifar10"]
    accuracy = {}
    with open(os.path.join(a.shared, "nats_bench_tss_200ep.csv")) as f:
        for row in csv.DictReader(f):
            accuracy[row["ArchitectureString"]] = float(row["CIFAR10TestAccuracy200Epochs"])
    keys = sorted(naslib)
    if a.limit:
        keys = keys[: a.limit]
    archs = [nb201_string(k) for k in keys]

    base = [a.naslab, "proxies", "--space", "nasbench201", "--seed", str(a.seed), "--json"]
    runs = [("data-free", base + ["--input", "3x32x32", "--classes", "10", "--proxies", "synflow,params,flops"])]
    tmp = None
    if a.data != "none":
        tmp = tempfile.mkdtemp()
        path = os.path.join(tmp, f"nb201-{a.data}.h5")
        stand_in_dataset(a.data, path)
        runs.append((f"data ({a.data} stand-in)", base + ["--dataset", path, "--batch-size", str(a.batch_size),
                                                         "--proxies", "naswot,jacov,snip,grad_norm"]))
    ours = {arch: {} for arch in archs}
    for label, command in runs:
        start = time.time()
        args = command + [x for arch in archs for x in ("--arch", arch)]
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        seconds = time.time() - start
        for line in out.splitlines():
            row = json.loads(line)
            ours[row["architecture"]].update({k: v for k, v in row.items() if k != "architecture"})
        print(f"{label}: {len(archs)} cells in {seconds:.1f} s ({1000 * seconds / len(archs):.1f} ms per cell, process start included)")

    def number(v):
        return float(v) if not isinstance(v, str) else float(v.replace("inf", "Infinity")) if v != "nan" else float("nan")

    acc = [accuracy[s] for s in archs]
    naslib_name = {"grad_norm": "grad_norm", "naswot": "nwot"}
    print()
    print(f"Spearman rho over {len(archs)} NAS-Bench-201 cells (CIFAR-10 test accuracy after 200 epochs)")
    print(f"{'proxy':<10} {'vs NASLib':>10} {'NASLab vs acc':>14} {'NASLib vs acc':>14}  input")
    for proxy in ["synflow", "params", "flops", "naswot", "jacov", "snip", "grad_norm"]:
        if proxy not in ours[archs[0]]:
            continue
        mine = [number(ours[s][proxy]) for s in archs]
        theirs = [naslib[k].get(naslib_name.get(proxy, proxy), {}).get("score", float("nan")) for k in keys]
        theirs = [float("nan") if t is None else t for t in theirs]
        r1, n1 = spearman(mine, theirs)
        r2, n2 = spearman(mine, acc)
        r3, n3 = spearman(theirs, acc)
        source = "data-free" if proxy in ("synflow", "params", "flops") else f"{a.data} stand-in batch of {a.batch_size} (NASLib: CIFAR-10)"
        print(f"{proxy:<10} {r1:>10.3f} {r2:>14.3f} {r3:>14.3f}  {source}  (n={n1}/{n2}/{n3})")


if __name__ == "__main__":
    main()
