#!/usr/bin/env bash
# Side-by-side featurization throughput on ../shared/corpora/mixed-v1.jsonl.gz:
# scikit-learn (bench/featurize_sklearn.py) and `pipeline embed`, alternating,
# RUNS rounds. Each line is one whole process: wall seconds and peak RSS from
# /usr/bin/time, plus each side's own timing. After the rounds, a summary gives
# each line's median wall seconds and peak RSS, and ours against
# scikit-learn's. Needs python3-sklearn
# (apt-get install -y python3-sklearn python3-threadpoolctl) and bin/pipeline.
#   bash bench/featurize.sh [RUNS]   (default 3)
# Environment: CORPUS, PY (the python with scikit-learn), PIPELINE (the
# binary; default bin/pipeline, built when missing), VARIANTS (a subset of
# "tfidf hashing lsa"; default all three), WAIT_IDLE (seconds: before each
# round, wait up to that long for the machine to be idle, >= 90% over 3 s;
# the round header says how idle it was).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
CORPUS=${CORPUS:-../shared/corpora/mixed-v1.jsonl.gz}
PY=${PY:-/usr/bin/python3} # the Debian python that python3-sklearn installs into
PIPELINE=${PIPELINE:-bin/pipeline}
VARIANTS=${VARIANTS:-tfidf hashing lsa}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
if [ "$PIPELINE" = bin/pipeline ] && [ ! -x bin/pipeline ]; then
  go build -o bin/pipeline ./cmd/pipeline
fi

timed() { # label, command...: prints "label wall_s rss_kb json"
  local label=$1; shift
  local json
  json=$(/usr/bin/time -f "%e %M" -o "$OUT/time" "$@")
  echo "$label $(cat "$OUT/time") $json" | tee -a "$OUT/all"
}
want() { [[ " $VARIANTS " == *" $1 "* ]]; }
idle_pct() { # percent of CPU time idle over 3 s
  local a b
  read -r -a a < /proc/stat; sleep 3; read -r -a b < /proc/stat
  local ta=0 tb=0 i
  for i in 1 2 3 4 5 6 7 8; do ta=$((ta + a[i])); tb=$((tb + b[i])); done
  echo $(( 100 * (b[4] - a[4]) / (tb - ta) ))
}
wait_idle() {
  local deadline=$(( $(date +%s) + ${WAIT_IDLE:-0} )) p
  while :; do
    p=$(idle_pct)
    if [ "$p" -ge 90 ] || [ "$(date +%s)" -ge "$deadline" ]; then echo "$p"; return; fi
  done
}

for r in $(seq 1 "$RUNS"); do
  idle=""
  [ "${WAIT_IDLE:-0}" -gt 0 ] && idle=", $(wait_idle)% idle before"
  echo "# round $r (load average: $(cut -d' ' -f1-3 /proc/loadavg)$idle)"
  if want tfidf; then
    timed sklearn-tfidf         "$PY" bench/featurize_sklearn.py --variant tfidf --corpus "$CORPUS"
    timed sklearn-tfidf-cbtm    "$PY" bench/featurize_sklearn.py --variant tfidf-cbtm --corpus "$CORPUS"
    timed ours-tfidf            "$PIPELINE" embed --in "$CORPUS" --out "$OUT/t.parquet" --featurizer tfidf --json --log-level warn
  fi
  if want hashing; then
    timed sklearn-hashing       "$PY" bench/featurize_sklearn.py --variant hashing --corpus "$CORPUS"
    timed sklearn-hashing-2proc "$PY" bench/featurize_sklearn.py --variant hashing-2proc --corpus "$CORPUS"
    timed ours-hashing          "$PIPELINE" embed --in "$CORPUS" --out "$OUT/h.parquet" --featurizer hashing --sublinear-tf --json --log-level warn
  fi
  if want lsa; then
    timed sklearn-lsa           "$PY" bench/featurize_sklearn.py --variant lsa --corpus "$CORPUS"
    timed ours-lsa              "$PIPELINE" embed --in "$CORPUS" --out "$OUT/l.parquet" --featurizer lsa --json --log-level debug 2>"$OUT/lsa.log"
    grep -o 'featurizer fitted.*' "$OUT/lsa.log" | sed 's/^/  ours-lsa-fit: /' || true
  fi
done

echo "# summary: median wall s (runs) and median peak RSS; ratio = scikit-learn / ours"
awk '
  { wall[$1] = wall[$1] " " $2; rss[$1] = rss[$1] " " $3 }
  function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    for (k in wall) { m[k] = median(wall[k]); printf "  %-22s %6.3f s  (%s )  %4.0f MB\n", k, m[k], wall[k], median(rss[k]) / 1024 }
    split("tfidf:tfidf tfidf-cbtm:tfidf hashing:hashing hashing-2proc:hashing lsa:lsa", pairs, " ")
    for (p in pairs) {
      split(pairs[p], kv, ":"); s = "sklearn-" kv[1]; o = "ours-" kv[2]
      if ((s in m) && (o in m) && m[o] > 0) printf "  ratio %-20s %5.1fx\n", kv[1], m[s] / m[o]
    }
  }' "$OUT/all"
