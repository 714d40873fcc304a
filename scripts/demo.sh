#!/usr/bin/env bash
# make demo: the main job on the embedded broker. For now (milestone 1) the
# round trip: start a durable embedded broker, ingest the demo corpus into
# docs.raw, run the identity stage (docs.raw → docs.identity) through the
# stage runtime, inspect both topics, and stop everything.
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

echo "== 3. identity stage docs.raw → docs.identity (Arrow IPC batches)"
"$BIN" identity --brokers "$addr" --in docs.raw --out docs.identity --json --log-level warn >"$WORK/identity.json" &
ipid=$!
pids+=($ipid)
for _ in $(seq 1 300); do
  n=$("$BIN" inspect --brokers "$addr" --topic docs.identity 2>/dev/null | wc -l)
  [ "$n" -ge "$docs" ] && break
  sleep 0.2
done
kill -TERM "$ipid"; wait "$ipid" || true
echo "   stage counts: $(cat "$WORK/identity.json")"

echo "== 4. topics"
"$BIN" topics list --brokers "$addr"

echo "== 5. first two rows of docs.identity (lines cut to 300 characters)"
"$BIN" inspect --brokers "$addr" --topic docs.identity --max 2 | cut -c1-300
echo "== demo done: $docs documents ingested and routed through the stage runtime"
