#!/usr/bin/env bash
# make demo: the main job on the embedded broker, as far as it is built:
# start a durable embedded broker, ingest the demo corpus into docs.raw, run
# the featurization stage (docs.raw → docs.features; it fits c-BTM's tf-idf on
# the head of the topic and saves the state), inspect the topics, and stop.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin/pipeline}
INPUT=${INPUT:-testdata/mixed-small.jsonl.gz}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/domainflow-demo.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== 1. embedded broker (durable, data in $WORK/broker)"
"$BIN" broker --listen 127.0.0.1:0 --data-dir "$WORK/broker" 2>"$WORK/broker.log" &
pids+=($!)
for _ in $(seq 1 100); do
  addr=$(sed -n 's/.*broker listening on \([0-9.:]*\).*/\1/p' "$WORK/broker.log" | head -1)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "${addr:-}" ] || { cat "$WORK/broker.log"; echo "demo: broker did not start" >&2; exit 1; }
echo "   listening on $addr"

echo "== 2. ingest $INPUT → docs.raw"
"$BIN" ingest --brokers "$addr" --json "$INPUT" | tee "$WORK/ingest.json"
docs=$(sed -n 's/.*"docs":\([0-9]*\).*/\1/p' "$WORK/ingest.json")

echo "== 3. featurization stage docs.raw → docs.features (fits tf-idf on the topic's head, state in $WORK/state)"
"$BIN" embed --brokers "$addr" --state "$WORK/state" --json --log-level warn >"$WORK/embed.json" &
epid=$!
pids+=($epid)
for _ in $(seq 1 300); do
  n=$({ "$BIN" inspect --brokers "$addr" --topic docs.features 2>/dev/null || true; } | wc -l)
  [ "$n" -ge "$docs" ] && break
  sleep 0.2
done
kill -TERM "$epid"; wait "$epid" || true
echo "   stage counts: $(cat "$WORK/embed.json")"
echo "   featurizer state: $(ls "$WORK/state" | tr '\n' ' ')"

echo "== 4. topics"
"$BIN" topics list --brokers "$addr"

echo "== 5. first row of docs.features (cut to 300 characters)"
"$BIN" inspect --brokers "$addr" --topic docs.features --max 1 | cut -c1-300
echo "== demo done: $docs documents ingested and featurized through the stage runtime"
