#!/usr/bin/env bash
# Unbalanced k-means NMI with many seeds, ours against scikit-learn (issue 4):
# one initialization each (`--restarts 1` against `n_init=1`), seeds FROM..TO,
# for each featurizer and k. Quality only (no timing), so it may share the
# machine; scikit-learn's side featurizes once per k (`--seeds`). Prints one
# line per run; summarize with
#   python3 bench/cluster_nmi_summary.py LOG
#   bash bench/cluster_nmi.sh [FROM] [TO]   (default 0 19)
# Environment: FEATS ("tfidf lsa"), KS ("5 8 16"), CORPUS, PY.
set -euo pipefail
cd "$(dirname "$0")/.."
FROM=${1:-0}
TO=${2:-19}
FEATS=${FEATS:-"tfidf lsa"}
KS=${KS:-"5 8 16"}
CORPUS=${CORPUS:-../shared/corpora/mixed-v1.jsonl.gz}
PY=${PY:-/usr/bin/python3}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
[ -x bin/pipeline ] || go build -o bin/pipeline ./cmd/pipeline
for feat in $FEATS; do
  lsa=""; [ "$feat" = lsa ] && lsa="--lsa"
  for k in $KS; do
    "$PY" bench/cluster_sklearn.py --k "$k" --seeds "$FROM:$TO" --n-init 1 $lsa --corpus "$CORPUS"
    for s in $(seq "$FROM" "$TO"); do
      d="$OUT/r-$feat-$k-$s"
      fit=$(bin/pipeline cluster fit --in "$CORPUS" --k "$k" --seed "$s" --featurizer "$feat" --restarts 1 \
        --balanced=false --out "$d" --json --log-level warn)
      ev=$(bin/pipeline cluster eval --router "$d" --in "$CORPUS" --balanced=false --json --log-level warn)
      echo "ours $feat $k $s $fit $ev"
      rm -rf "$d"
    done
  done
done
