#!/usr/bin/env bash
# Integration tests (build tag `integration`): kcat interop, and the runtime's
# Kafka tests against a real Apache Kafka from Maven Central — each of the two
# supported release lines in turn (scripts/kafka/kafka.sh) — with Kafka's own
# CLI tools of each line against `pipeline broker`; then our CLI against a
# real Kafka whose client listener is SASL_SSL (SCRAM users, a CA made with
# openssl). Needs Java 17, Maven, kcat and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v kcat >/dev/null || { echo "test-integration: kcat not found (apt-get install kcat)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "test-integration: openssl not found (apt-get install openssl)" >&2; exit 1; }
VERSIONS=${KAFKA_VERSIONS:-"4 3.9"}
PORT=${KAFKA_PORT:-29092}
SASL_VERSIONS=${KAFKA_SASL_VERSIONS:-4}
SASL_PORT=${KAFKA_SASL_PORT:-29192}

for v in $VERSIONS; do
  dir=$(mktemp -d "${TMPDIR:-/tmp}/domainflow-kafka-it.XXXXXX")
  echo "== Apache Kafka $v on 127.0.0.1:$PORT ($dir)"
  bash scripts/kafka/kafka.sh start --version "$v" --port "$PORT" --dir "$dir" >/dev/null
  trap 'bash scripts/kafka/kafka.sh stop --port "$PORT" --dir "$dir" >/dev/null 2>&1 || true' EXIT
  export DOMAINFLOW_KAFKA_BROKERS="127.0.0.1:$PORT" DOMAINFLOW_KAFKA_DIR="$dir" \
         DOMAINFLOW_KAFKA_VERSION="$v" DOMAINFLOW_KAFKA_NAME="kafka-$v"
  go test -tags integration -count=1 -timeout 20m \
    -run '^(TestIdentity100kCrashRestart|TestBadInputKafka|TestRunnerOversizeKafka|TestKafkaSourceLags|TestGroupCommitter)$/^kafka' ./pipeline/
  go test -tags integration -count=1 -timeout 20m \
    -run '^(TestRealKafkaMultiProcess|TestKcatInterop|TestRealKafkaJob|TestRealKafkaOversize|TestKafkaToolsEmbeddedBroker)$' ./e2e/
  bash scripts/kafka/kafka.sh stop --port "$PORT" --dir "$dir" >/dev/null
  trap - EXIT
  rm -rf "$dir"
done

# SASL_SSL: kafka.sh prints KAFKA_BROKERS, KAFKA_TLS_CA, KAFKA_SASL_USER,
# KAFKA_SASL_PASSWORD and KAFKA_CLIENT_CONFIG, one VAR=value a line.
for v in $SASL_VERSIONS; do
  dir=$(mktemp -d "${TMPDIR:-/tmp}/domainflow-kafka-sasl-it.XXXXXX")
  echo "== Apache Kafka $v, SASL_SSL (SCRAM, TLS) on 127.0.0.1:$SASL_PORT ($dir)"
  envs=$(bash scripts/kafka/kafka.sh start --sasl-ssl --version "$v" --port "$SASL_PORT" --dir "$dir")
  trap 'bash scripts/kafka/kafka.sh stop --port "$SASL_PORT" --dir "$dir" >/dev/null 2>&1 || true' EXIT
  while IFS='=' read -r name value; do
    case "$name" in
      KAFKA_BROKERS) export DOMAINFLOW_KAFKA_SASL_BROKERS="$value" ;;
      KAFKA_TLS_CA|KAFKA_SASL_USER|KAFKA_SASL_PASSWORD|KAFKA_CLIENT_CONFIG) export "DOMAINFLOW_$name=$value" ;;
    esac
  done <<<"$envs"
  export DOMAINFLOW_KAFKA_VERSION="$v"
  go test -tags integration -count=1 -timeout 10m -run '^TestRealKafkaSASLSSL$' ./e2e/
  bash scripts/kafka/kafka.sh stop --port "$SASL_PORT" --dir "$dir" >/dev/null
  trap - EXIT
  rm -rf "$dir"
done

echo "== the report page in headless Chromium"
go test -tags integration -count=1 -timeout 10m -run '^TestReportInChromium$' ./e2e/

echo "== Parquet artifacts in pyarrow and duckdb (a venv from PyPI)"
venv=${DOMAINFLOW_PY_VENV:-"${TMPDIR:-/tmp}/domainflow-parquet-venv"}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || { echo "test-integration: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
fi
"$venv/bin/pip" install -q pyarrow duckdb
DOMAINFLOW_PYTHON="$venv/bin/python" go test -tags integration -count=1 -timeout 10m \
  -run '^(TestParquetArtifactsInOutsideTools|TestLZ4TextsFromPyarrow)$' ./e2e/
