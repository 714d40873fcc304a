#!/usr/bin/env bash
# Side-by-side featurization throughput on ../shared/corpora/mixed-v1.jsonl.gz:
# scikit-learn (bench/featurize_sklearn.py) and `pipeline embed`, alternating,
# RUNS rounds. Each line is one whole process: wall seconds and peak RSS from
# /usr/bin/time, plus each side's own timing. Needs python3-sklearn
# (apt-get install -y python3-sklearn python3-threadpoolctl) and bin/pipeline.
#   bash bench/featurize.sh [RUNS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
CORPUS=${CORPUS:-../shared/corpora/mixed-v1.jsonl.gz}
PY=${PY:-/usr/bin/python3} # the Debian python that python3-sklearn installs into
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
[ -x bin/pipeline ] || go build -o bin/pipeline ./cmd/pipeline

timed() { # label, command...: prints "label wall_s rss_kb json"
  local label=$1; shift
  local json
  json=$(/usr/bin/time -f "%e %M" -o "$OUT/time" "$@")
  echo "$label $(cat "$OUT/time") $json"
}

for r in $(seq 1 "$RUNS"); do
  echo "# round $r"
  timed sklearn-tfidf         "$PY" bench/featurize_sklearn.py --variant tfidf --corpus "$CORPUS"
  timed sklearn-tfidf-cbtm    "$PY" bench/featurize_sklearn.py --variant tfidf-cbtm --corpus "$CORPUS"
  timed ours-tfidf            bin/pipeline embed --in "$CORPUS" --out "$OUT/t.parquet" --featurizer tfidf --json --log-level warn
  timed sklearn-hashing       "$PY" bench/featurize_sklearn.py --variant hashing --corpus "$CORPUS"
  timed sklearn-hashing-2proc "$PY" bench/featurize_sklearn.py --variant hashing-2proc --corpus "$CORPUS"
  timed ours-hashing          bin/pipeline embed --in "$CORPUS" --out "$OUT/h.parquet" --featurizer hashing --sublinear-tf --json --log-level warn
  timed sklearn-lsa           "$PY" bench/featurize_sklearn.py --variant lsa --corpus "$CORPUS"
  timed ours-lsa              bin/pipeline embed --in "$CORPUS" --out "$OUT/l.parquet" --featurizer lsa --json --log-level debug 2>"$OUT/lsa.log"
  grep -o 'featurizer fitted.*' "$OUT/lsa.log" | sed 's/^/  ours-lsa-fit: /' || true
done
