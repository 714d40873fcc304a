#!/usr/bin/env bash
# make demo: the main job on the embedded broker. `pipeline run` starts a
# durable embedded broker (data under the output dir), ingests the demo
# corpus, fits c-BTM's tf-idf and a balanced k-means router on it, routes
# every document through the embed and cluster stages, trains a dense seed,
# one expert per domain branched from it and a dense baseline that continues
# the seed for the same total compute, evaluates them on held-out documents
# and prints the summary; `pipeline report` then writes the HTML report.
# Each phase prints a line on stderr when it ends (a bar on a terminal).
#
# The output goes to ./demo-out (git-ignored), replaced on each run. With
# OUT=DIR it goes to DIR instead and is kept: running the same command again
# resumes there, and a completed job finishes at once. Extra arguments go to
# `pipeline run` (e.g. make demo ARGS="--expert small").
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin/pipeline}
kept=yes
if [ -z "${OUT:-}" ]; then
  OUT=demo-out
  kept=
  rm -rf "$OUT"
fi
echo "== pipeline run --out $OUT $*"
start=$(date +%s)
"$BIN" run --out "$OUT" --log-level warn "$@"
echo "== pipeline report --out $OUT"
"$BIN" report --out "$OUT"
echo "== demo done in $(( $(date +%s) - start ))s"
echo "   summary: $OUT/summary.json"
echo "   report:  $OUT/report.html (file://$(cd "$OUT" && pwd)/report.html)"
if [ -n "$kept" ]; then
  echo "   OUT=$OUT is kept: the same command again resumes there (a completed job finishes at once)"
else
  echo "   rerun with OUT=$OUT to see a completed job resume at once (without OUT the demo starts afresh)"
fi
