"""Optuna's ask/tell throughput on the same NAS-Bench-201 lookup as `naslab-bench throughput`.

RandomSampler, in-memory storage, 6 categorical parameters (one op per cell edge); the objective
looks the NB201 string up in the same CSV. Prints trials/s.
"""
import csv
import sys
import time

import optuna

table_path = sys.argv[1]
trials = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
with open(table_path) as f:
    table = {row["ArchitectureString"]: float(row["CIFAR10TestAccuracy200Epochs"]) for row in csv.DictReader(f)}


def objective(trial):
    e = [trial.suggest_categorical(f"edge{i}", ops) for i in range(6)]
    arch = f"|{e[0]}~0|+|{e[1]}~0|{e[2]}~1|+|{e[3]}~0|{e[4]}~1|{e[5]}~2|"
    return table[arch]


optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
start = time.perf_counter()
study.optimize(objective, n_trials=trials)
elapsed = time.perf_counter() - start
print(f"optuna {optuna.__version__} RandomSampler (in-memory) ask/tell + lookup: {trials / elapsed:.0f} trials/s")
print(f"optuna trials/s: {trials / elapsed:.1f}")
