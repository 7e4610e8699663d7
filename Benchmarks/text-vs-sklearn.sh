#!/usr/bin/env bash
# Text classification: NASLab's searched text model vs scikit-learn TF-IDF + linear models, on the
# same train/validation/test split of the fortunes dataset.
#
#   Benchmarks/text-vs-sklearn.sh
#   SKIP_SEARCH=1 RECORD=Results/text-fortunes.h5 Benchmarks/text-vs-sklearn.sh   # reuse a finished search
#
# 1. builds naslab (release);
# 2. `naslab datasets export` writes the split a search of $CONFIG uses (its dataset, seed and
#    validation_split; a search seeds its dataset split with the experiment seed) — the export
#    checks itself against the token ids NASLab trains on;
# 3. Benchmarks/python/text_sklearn.py: TF-IDF (word 1–2-grams + char_wb 2–5-grams, sublinear tf,
#    fitted on train) + LinearSVC and + LogisticRegression, C picked on the validation split;
# 4. `naslab search $CONFIG` into a new record (about 30 min on 2 cores; BUDGET=N overrides the
#    number of candidates), unless SKIP_SEARCH=1 with RECORD=path of an existing record;
# 5. the best candidate by validation accuracy (ties: lowest id) from `naslab export --format json`.
#
# Python: $PYTHON if set, else Benchmarks/.venv (created when missing; scikit-learn installed into
# it when it lacks it). Last line: "ratio naslab/sklearn test accuracy: <x>" (NASLab's best test
# accuracy over the higher of the two scikit-learn test accuracies).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-Experiments/text-fortunes.yaml}
SKIP_SEARCH=${SKIP_SEARCH:-0}
RECORD=${RECORD:-}
BUDGET=${BUDGET:-}
if [ "$SKIP_SEARCH" = 1 ] && { [ -z "$RECORD" ] || [ ! -f "$RECORD" ]; }; then
    echo "SKIP_SEARCH=1 needs RECORD=path of an existing search record" >&2
    exit 2
fi

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
# A top-level `key: value` of the config (first match; comments stripped), or a default.
config_value() {
    local v
    v=$(awk -v k="$1" 'index($0, k":") == 1 {sub(/#.*/, ""); print $2; exit}' "$CONFIG")
    echo "${v:-$2}"
}
DATASET=$(config_value dataset digits)
SEED=$(config_value seed 0)                      # ExperimentConfig's defaults
VALIDATION=$(config_value validation_split 0.1)

if [ -z "${PYTHON:-}" ]; then
    [ -x Benchmarks/.venv/bin/python ] || python3 -m venv Benchmarks/.venv
    PYTHON=Benchmarks/.venv/bin/python
fi
"$PYTHON" -c "import sklearn" 2>/dev/null || "$PYTHON" -m pip install --quiet scikit-learn

echo "machine: $(nproc) cpus, load: $(cut -d' ' -f1-3 /proc/loadavg)"
t=$(now)
swift build -c release --product naslab >&2
BIN="$(swift build -c release --show-bin-path)/naslab"
echo "build: $(since "$t") s"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/text-vs-sklearn.XXXXXX")
SPLIT="$WORK/$DATASET-seed$SEED.csv"
t=$(now)
"$BIN" datasets export "$DATASET" --seed "$SEED" --validation-split "$VALIDATION" --output "$SPLIT"
echo "export ($DATASET, seed $SEED, validation split $VALIDATION): $(since "$t") s"

t=$(now)
"$PYTHON" -u Benchmarks/python/text_sklearn.py "$SPLIT" | tee "$WORK/sklearn.log"
echo "sklearn: $(since "$t") s"
SVC=$(awk -F': ' '/^sklearn linearsvc test accuracy:/ {print $2}' "$WORK/sklearn.log")
LOGREG=$(awk -F': ' '/^sklearn logreg test accuracy:/ {print $2}' "$WORK/sklearn.log")
SK_BEST=$(awk -F': ' '/^sklearn best test accuracy:/ {print $2}' "$WORK/sklearn.log")

if [ "$SKIP_SEARCH" != 1 ]; then
    RECORD="$WORK/$(basename "$CONFIG" .yaml).h5"
    t=$(now)
    "$BIN" search "$CONFIG" --output "$RECORD" ${BUDGET:+--budget "$BUDGET"}
    echo "naslab search: $(since "$t") s (record: $RECORD; SKIP_SEARCH=1 RECORD=$RECORD reuses it)"
fi
NASLAB=$("$BIN" export "$RECORD" --format json | "$PYTHON" -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["status"] == "accepted" and r["val_accuracy"] is not None]
if not rows:
    sys.exit("the record has no accepted candidate")
best = max(rows, key=lambda r: (r["val_accuracy"], -r["id"]))
test = best["test_accuracy"] if best["test_accuracy"] is not None else float("nan")
print("naslab best: candidate %d, validation accuracy %.4f, test accuracy %.4f, %s params: %s"
      % (best["id"], best["val_accuracy"], test, best["params"], best["architecture"]), file=sys.stderr)
print(test)
')

echo "sklearn linearsvc test accuracy: $SVC"
echo "sklearn logreg test accuracy: $LOGREG"
echo "naslab best test accuracy: $(awk -v a="$NASLAB" 'BEGIN {printf "%.4f", a}')"
echo "ratio naslab/sklearn test accuracy: $(awk -v a="$NASLAB" -v b="$SK_BEST" 'BEGIN {printf "%.3f", a / b}')"
