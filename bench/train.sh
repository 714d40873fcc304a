#!/usr/bin/env bash
# Side-by-side training throughput of the expert language model: `pipeline bench train` and the
# PyTorch anchor (../shared/anchors/train_lm.py bench: same architecture, same batch and context,
# torch 1 thread × OPENBLAS_NUM_THREADS=2, its best 2-core setting, see anchors/lm_bench.sh),
# alternating in interleaved rounds, 5 warm-up + 30 timed steps per run on both sides. Both sides
# wait for an idle machine before a run and retry a run during which other processes used 0.1
# cores or more (the anchor's guard; ours: --guard). One line per run, then a table of the median
# tokens/s per size and the ratio ours / PyTorch.
# Needs PyTorch for /usr/bin/python3 and ../shared/corpora/mixed-v1.jsonl.gz (the anchor's data).
#   bash bench/train.sh [ROUNDS] [EXPERTS]   (defaults: 3, "tiny small base")
#   THREADS=2 (ours: --threads), BUILD=1 rebuilds bin/pipeline first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
EXPERTS=${2:-"tiny small base"}
THREADS=${THREADS:-2}
PY=${PY:-/usr/bin/python3}
ANCHOR=${ANCHOR:-../shared/anchors/train_lm.py}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
if [ "${BUILD:-0}" = 1 ] || [ ! -x bin/pipeline ]; then go build -o bin/pipeline ./cmd/pipeline; fi

for r in $(seq 1 "$ROUNDS"); do
  echo "# round $r"
  for e in $EXPERTS; do
    ours=$(bin/pipeline bench train --expert "$e" --threads "$THREADS" --steps 30 --warmup 5 --json --log-level warn)
    tok=$("$PY" -c 'import json,sys; print(round(json.load(sys.stdin)["tokens_per_s"]))' <<<"$ours")
    echo "ours  $e $tok $ours"
    echo "$e ours $tok" >>"$OUT/results"
    torch=$(OPENBLAS_NUM_THREADS=2 "$PY" "$ANCHOR" bench --config "$e" --threads 1 --runs 1 --warmup 5 --steps 30 2>>"$OUT/torch.err" | grep -E '^(  run|BENCH)' | tr '\n' ' ' || true)
    tok=$(sed -n 's/.*tok\/s median=\([0-9]*\).*/\1/p' <<<"$torch")
    echo "torch $e ${tok:-?} $torch"
    [ -n "$tok" ] && echo "$e torch $tok" >>"$OUT/results"
  done
done

"$PY" - "$OUT/results" "$EXPERTS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print(f"\n{'expert':<7}{'ours tok/s':>12}{'torch tok/s':>13}{'ratio':>8}   runs (ours | torch)")
for e in sys.argv[2].split():
    o = [float(v) for x, s, v in rows if x == e and s == "ours"]
    t = [float(v) for x, s, v in rows if x == e and s == "torch"]
    mo = statistics.median(o) if o else float("nan")
    mt = statistics.median(t) if t else float("nan")
    print(f"{e:<7}{mo:>12.0f}{mt:>13.0f}{mo / mt:>8.2f}   {[round(v) for v in o]} | {[round(v) for v in t]}")
PY
