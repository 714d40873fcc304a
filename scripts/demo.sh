#!/usr/bin/env bash
# make demo: the main job on the embedded broker. `pipeline run` starts a
# durable embedded broker (data under the output dir), ingests the demo
# corpus, fits c-BTM's tf-idf and a balanced k-means router on it, routes
# every document through the embed and cluster stages, trains a dense seed,
# one expert per domain branched from it and a dense baseline of the same
# total compute, evaluates them on held-out documents and prints the summary;
# `pipeline report` then writes the HTML report. Extra arguments go to
# `pipeline run` (e.g. make demo ARGS="--expert small").
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin/pipeline}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/domainflow-demo.XXXXXX")/run}
echo "== pipeline run --out $OUT $*"
start=$(date +%s)
"$BIN" run --out "$OUT" --log-level warn "$@"
echo "== pipeline report --out $OUT"
"$BIN" report --out "$OUT"
echo "== demo done in $(( $(date +%s) - start ))s: summary $OUT/summary.json, report $OUT/report.html"
echo "   rerun the same command with OUT=$OUT to see a completed job resume instantly"
