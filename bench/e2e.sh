#!/usr/bin/env bash
# End-to-end throughput (issue 7): documents/s and MB/s from ingest to the
# domain topics on the embedded broker, with and without training consumers
# running, and peak memory. Each round runs:
#   A. `pipeline run --train=false` (embedded broker in process): split,
#      ingest, fit, embed + cluster stages until every document is routed;
#   B. the same against a `pipeline broker` process while `pipeline train
#      --domain all --expert small` trains on the domain topics as they fill.
# The figure is the ingest + route phases of the summary (the fit of the
# featurizer and router is reported apart).
#
#   REPEAT=4 bash bench/e2e.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/pipeline}
CORPUS=${CORPUS:-../shared/corpora/mixed-v1.jsonl.gz}
ROUNDS=${1:-3}
K=${K:-8}
REPEAT=${REPEAT:-4} # the corpus this many times over (a longer stream: stage start-up is amortized)
IN=$(printf "%s," $(for _ in $(seq 1 "$REPEAT"); do echo "$CORPUS"; done)); IN=${IN%,}
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/pipeline
WORK=$(mktemp -d "${TMPDIR:-/tmp}/domainflow-e2e.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

report() { # summary.json → one line
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
p = s["phases"]
mb = sum(len(json.loads(l)["text"].encode()) for l in __import__("gzip").open(sys.argv[1] + "/train.jsonl.gz", "rt"))
t = p.get("ingest", 0) + p.get("route", 0)
print(f"{sys.argv[2]:<22} docs {s['docs_routed']:5d}  ingest {p.get('ingest',0):6.2f}s  fit {p.get('fit',0):5.2f}s  route {p.get('route',0):6.2f}s"
      f"  ingest+route {t:6.2f}s = {s['docs_routed']/t:7.0f} docs/s, {mb/1e6/t:6.1f} MB/s  peak RSS {s['peak_rss_bytes']/2**20:.0f} MiB")
PY
}

for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r"
  out="$WORK/a$r"
  "$BIN" run --input "$IN" --out "$out" --k "$K" --train=false --log-level warn --json >/dev/null 2>"$out.log"
  report "$out" "A: no trainers"

  "$BIN" broker --listen 127.0.0.1:0 --data-dir "$WORK/broker$r" 2>"$WORK/broker$r.log" &
  bpid=$!; pids+=($bpid)
  for _ in $(seq 1 100); do
    addr=$(sed -n 's/.*broker listening on \([0-9.:]*\).*/\1/p' "$WORK/broker$r.log" | head -1)
    [ -n "$addr" ] && break; sleep 0.1
  done
  "$BIN" train --brokers "$addr" --domain all --out "$WORK/t$r" --expert small --log-level warn 2>"$WORK/t$r.log" &
  tpid=$!; pids+=($tpid)
  out="$WORK/b$r"
  "$BIN" run --brokers "$addr" --input "$IN" --out "$out" --k "$K" --train=false --log-level warn --json >/dev/null 2>"$out.log"
  report "$out" "B: trainers running"
  kill "$tpid" "$bpid" 2>/dev/null || true; wait "$tpid" "$bpid" 2>/dev/null || true
done
