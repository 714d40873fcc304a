#!/usr/bin/env bash
# Side-by-side clustering on ../shared/corpora/mixed-v1.jsonl.gz, k in {5, 8, 16}, SEEDS seeds:
# scikit-learn (c-BTM tf-idf [+ LSA] + KMeans(n_init=RESTARTS)) and `pipeline cluster fit
# --restarts RESTARTS` + `cluster eval` (unbalanced and balanced), whole processes, alternating.
# One JSON line each.
#   RESTARTS=1 bash bench/cluster.sh [SEEDS] [FEATURIZERS]   (defaults: 1, 5, "tfidf lsa")
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-5}
FEATS=${2:-"tfidf lsa"}
CORPUS=${CORPUS:-../shared/corpora/mixed-v1.jsonl.gz}
PY=${PY:-/usr/bin/python3}
RESTARTS=${RESTARTS:-1} # k-means initializations on both sides (sklearn's n_init)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
[ -x bin/pipeline ] || go build -o bin/pipeline ./cmd/pipeline
for feat in $FEATS; do
  lsa=""; [ "$feat" = lsa ] && lsa="--lsa"
  for k in 5 8 16; do
    for seed in $(seq 0 $((SEEDS - 1))); do
      echo "sklearn $feat $k $seed $("$PY" bench/cluster_sklearn.py --k "$k" --seed "$seed" --n-init "$RESTARTS" $lsa --corpus "$CORPUS")"
      for bal in false true; do
        dir="$OUT/r-$feat-$k-$seed-$bal"
        fit=$( { /usr/bin/time -f "%e" -o "$OUT/t" bin/pipeline cluster fit --in "$CORPUS" --k "$k" --seed "$seed" --featurizer "$feat" --restarts "$RESTARTS" \
          --balanced="$bal" --out "$dir" --json --log-level warn; } )
        ev=$(bin/pipeline cluster eval --router "$dir" --in "$CORPUS" --balanced="$bal" --json --log-level warn)
        echo "ours-balanced=$bal $feat $k $seed wall=$(cat "$OUT/t") $fit $ev"
      done
    done
  done
done
