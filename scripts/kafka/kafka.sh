#!/usr/bin/env bash
# Single-node Apache Kafka broker (KRaft, broker+controller in one JVM) for
# integration tests, and Apache Kafka's own CLI tools, built from the jars
# that Maven Central serves: no Docker, no tarball download, only `mvn` and
# `java` (17+), and `openssl` for --sasl-ssl.
#
# Usage:
#   scripts/kafka/kafka.sh start|stop|status [--version 4|3.9|X.Y.Z] [--port 19092] [--dir DIR] [--sasl-ssl]
#   scripts/kafka/kafka.sh tool [--version 4|3.9|X.Y.Z] NAME [ARGS...]
#
#   start   resolve the jars (cached), write server.properties, format a fresh
#           log dir, launch the broker in the background and wait until it
#           serves (port open, "Kafka Server started" logged, FindCoordinator
#           answered); prints KAFKA_BROKERS=127.0.0.1:PORT on stdout on success
#           (progress goes to stderr). If a broker of the same version started
#           by this script already runs in DIR, it just prints the line.
#   stop    stop the broker recorded in DIR/kafka.pid (TERM, then KILL after
#           KAFKA_STOP_TIMEOUT seconds). A no-op if none runs.
#   status  exit 0 and print "running ..." if the broker runs, else exit 3.
#   tool    run one of Kafka's CLI tools of that version in the foreground,
#           from the same jars (no broker needed): NAME is kafka-topics,
#           kafka-consumer-groups, kafka-console-producer,
#           kafka-console-consumer, kafka-get-offsets, kafka-configs,
#           kafka-acls, kafka-broker-api-versions (with or without .sh), or a
#           main class; ARGS go to the tool as they are. Its log lines at WARN
#           and above go to stderr. Example:
#             kafka.sh tool kafka-consumer-groups --bootstrap-server 127.0.0.1:9092 --list
#
# SASL_SSL (--sasl-ssl, or KAFKA_SASL_SSL=1): the client port PORT speaks
# SASL_SSL only (SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN), with a server
# certificate for 127.0.0.1 and localhost signed by a CA made with openssl at
# each fresh start (DIR/tls/ca.pem). The SCRAM user is created when the log
# dir is formatted. The broker's own traffic and the readiness probe use a
# PLAINTEXT listener on 127.0.0.1:PORT+2. `start` then also prints
# KAFKA_SECURITY=SASL_SSL, KAFKA_TLS_CA, KAFKA_SASL_USER, KAFKA_SASL_PASSWORD
# and KAFKA_CLIENT_CONFIG (a properties file for the Kafka CLI tools'
# --command-config), one VAR=value a line.
#
# Options / environment (an option wins over its variable):
#   --version  KAFKA_VERSION  4 (= 4.4.0, default), 3.9 (= 3.9.2) or a full
#                             4.x.y / 3.9.y version.
#   --port     KAFKA_PORT     PLAINTEXT port (default 19092); the KRaft
#                             controller listens on PORT+1. Both bind 127.0.0.1.
#   --keep-data               restart on the existing DIR/data (e.g. after a
#                             SIGKILL) instead of wiping and formatting it.
#   --dir      KAFKA_DIR      state dir: server.properties, data/, kafka.pid,
#                             kafka.log (default ${TMPDIR:-/tmp}/domainflow-kafka-PORT).
#   --sasl-ssl KAFKA_SASL_SSL=1  the SASL_SSL mode above.
#   KAFKA_SASL_USER           SCRAM/PLAIN user of --sasl-ssl (default domainflow).
#   KAFKA_SASL_PASSWORD       its password (default domainflow-secret: a test
#                             broker on loopback, not a secret).
#   KAFKA_CACHE               jar cache (default $HOME/.cache/domainflow/kafka-<version>);
#                             jars go to $KAFKA_CACHE/lib and are reused.
#   KAFKA_START_TIMEOUT       seconds to wait for the broker (default 60).
#   KAFKA_STOP_TIMEOUT        seconds to wait after SIGTERM (default 30).
#   KAFKA_HEAP_OPTS           default "-Xms128m -Xmx512m".
#   KAFKA_JVM_OPTS            extra JVM flags appended to the defaults.
#   JAVA, MVN                 java / mvn executables (default: from PATH).
#
# Every `start` of a stopped broker wipes DIR/data and formats it anew with a
# random cluster id: each run starts from an empty cluster.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "kafka.sh: $*" >&2; exit 1; }
log() { echo "kafka.sh: $*" >&2; }

usage() {
  sed -n '7,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ---------------------------------------------------------------- arguments
[[ $# -ge 1 ]] || usage
CMD="$1"; shift
VERSION_ARG="${KAFKA_VERSION:-4}"
PORT="${KAFKA_PORT:-19092}"
DIR="${KAFKA_DIR:-}"
KEEP_DATA=0
SASL_SSL="${KAFKA_SASL_SSL:-0}"
[[ "$SASL_SSL" == 1 ]] || SASL_SSL=0
SASL_USER="${KAFKA_SASL_USER:-domainflow}"
SASL_PASSWORD="${KAFKA_SASL_PASSWORD:-domainflow-secret}"
TOOL=""
TOOL_ARGS=()
while [[ $# -gt 0 ]]; do
  # `tool`: the first word that is not one of ours is the tool, and the rest
  # is the tool's.
  if [[ "$CMD" == tool && "$1" != --version && "$1" != --version=* && "$1" != -h && "$1" != --help ]]; then
    TOOL="$1"; shift; TOOL_ARGS=("$@"); break
  fi
  case "$1" in
    --version) [[ $# -ge 2 ]] || usage; VERSION_ARG="$2"; shift 2 ;;
    --version=*) VERSION_ARG="${1#*=}"; shift ;;
    --port) [[ $# -ge 2 ]] || usage; PORT="$2"; shift 2 ;;
    --port=*) PORT="${1#*=}"; shift ;;
    --dir) [[ $# -ge 2 ]] || usage; DIR="$2"; shift 2 ;;
    --dir=*) DIR="${1#*=}"; shift ;;
    --keep-data) KEEP_DATA=1; shift ;;
    --sasl-ssl) SASL_SSL=1; shift ;;
    -h|--help) usage ;;
    *) log "unknown argument: $1"; usage ;;
  esac
done

if ! [[ "$PORT" =~ ^[0-9]+$ ]] || (( PORT < 1024 || PORT > 65533 )); then
  die "--port must be a number in 1024..65533 (got '$PORT')"
fi
CONTROLLER_PORT=$((PORT + 1))
# --sasl-ssl: the broker's own PLAINTEXT listener (inter-broker traffic and
# the readiness probe); PORT is then SASL_SSL only.
INTERNAL_PORT=$((PORT + 2))
[[ "$SASL_USER" =~ ^[A-Za-z0-9._-]+$ ]] || die "KAFKA_SASL_USER must be letters, digits, '.', '_' or '-' (got '$SASL_USER')"
[[ "$SASL_PASSWORD" =~ ^[A-Za-z0-9._-]+$ ]] || die "KAFKA_SASL_PASSWORD must be letters, digits, '.', '_' or '-'"

DIR="${DIR:-${TMPDIR:-/tmp}/domainflow-kafka-$PORT}"
# Absolute, so that stop/status from another working directory find the same
# pid file and log.dirs does not depend on where start ran.
DIR="$(realpath -m "$DIR")"

# Map the requested line to a concrete release and its resolve POM. The
# defaults are the newest releases Maven Central serves on each line.
case "$VERSION_ARG" in
  4|4.x)   KAFKA_VERSION=4.4.0 ;;
  3.9|3.9.x) KAFKA_VERSION=3.9.2 ;;
  4.*.*|3.9.*) KAFKA_VERSION="$VERSION_ARG" ;;
  *) die "--version must be 4, 3.9, 4.x.y or 3.9.y (got '$VERSION_ARG')" ;;
esac
case "$KAFKA_VERSION" in
  4.*) LINE=4 ;;
  *)   LINE=3.9 ;;
esac
POM="$SCRIPT_DIR/pom-$LINE.xml"
CACHE="$(realpath -m "${KAFKA_CACHE:-$HOME/.cache/domainflow/kafka-$KAFKA_VERSION}")"
LIB="$CACHE/lib"

JAVA="${JAVA:-java}"
MVN="${MVN:-mvn}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

PID_FILE="$DIR/kafka.pid"
LOG_FILE="$DIR/kafka.log"
VERSION_FILE="$DIR/kafka.version"
SECURITY_FILE="$DIR/kafka.security"
TLS_DIR="$DIR/tls"
CLIENT_CONFIG="$DIR/client.properties"
PROPS="$DIR/server.properties"
DATA="$DIR/data"

# ---------------------------------------------------------------- helpers

# Prints the pid of the broker recorded in DIR if that process is alive and
# really is a kafka.Kafka JVM (guards against a recycled pid); else fails.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka' || return 1
  fi
  echo "$pid"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True once the broker has logged its "started" line. KafkaRaftServer logs
# "[KafkaRaftServer nodeId=1] Kafka Server started (kafka.server.KafkaRaftServer)"
# on 3.9 and 4.x alike.
broker_started() {
  [[ -f "$LOG_FILE" ]] && grep -q 'Kafka Server started' "$LOG_FILE"
}

# Sends one FindCoordinator v0 request for a dummy group to 127.0.0.1:$1 and
# prints the response's error code as 4 hex digits ("0000" = coordinator
# known, "000f" = COORDINATOR_NOT_AVAILABLE while __consumer_offsets is being
# created). Raw Kafka protocol over bash's /dev/tcp, so no client is needed:
#   request  = int32 size | int16 api_key=10 | int16 version=0 | int32 corr_id
#              | string client_id | string key          (strings: int16 len + bytes)
#   response = int32 size | int32 corr_id | int16 error_code | ...
# Runs in a subshell so a failed connect cannot take the script down.
find_coordinator_error() (
  local port="$1" client="kafka.sh" key="domainflow-warmup"
  local size=$(( 2 + 2 + 4 + 2 + ${#client} + 2 + ${#key} ))
  exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
  # shellcheck disable=SC2059  # the format string is built on purpose
  printf "\\x00\\x00\\x00\\x$(printf %02x "$size")\\x00\\x0a\\x00\\x00\\x00\\x00\\x00\\x01\\x00\\x$(printf %02x ${#client})%s\\x00\\x$(printf %02x ${#key})%s" \
    "$client" "$key" >&3
  local out
  out="$(timeout 5 head -c 10 <&3 | od -An -tx1 | tr -d ' \n')"
  [[ ${#out} -eq 20 ]] || exit 1
  echo "${out:16:4}"
)

show_log_tail() {
  if [[ -f "$LOG_FILE" ]]; then
    echo "---- last 40 lines of $LOG_FILE ----" >&2
    tail -n 40 "$LOG_FILE" >&2
    echo "----" >&2
  fi
}

# Serialise start/stop on the same DIR (fd 9 is closed for the broker JVM so
# the lock is not inherited by it).
lock_dir() {
  mkdir -p "$DIR"
  exec 9>"$DIR/.lock"
  flock -w 180 9 || die "timed out waiting for the lock on $DIR/.lock"
}

# True when $LIB holds a completed resolve of the current POM: .complete
# records the POM's checksum, so a changed POM (say, the CLI tools added)
# resolves anew instead of running on an old set of jars.
lib_complete() {
  [[ -f "$LIB/.complete" ]] && [[ "$(cat "$LIB/.complete")" == "$(pom_sum)" ]]
}

pom_sum() {
  { cat "$POM"; echo "$KAFKA_VERSION"; } | sha256sum | cut -d' ' -f1
}

# Resolves the broker and CLI tool jars into $LIB unless a previous run
# completed there. Works on a copy of the POM inside the cache so nothing is
# written into the repository, and renames the finished dir into place so
# that an interrupted download is never mistaken for a complete one.
resolve_jars() {
  if lib_complete; then
    return 0
  fi
  command -v "$MVN" >/dev/null || die "mvn not found (needed once to fetch Kafka $KAFKA_VERSION)"
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.lock"
  flock -w 600 8 || die "timed out waiting for the lock on $CACHE/.lock"
  if ! lib_complete; then
    log "resolving Kafka $KAFKA_VERSION jars from Maven Central into $LIB (first run only)"
    local t0=$SECONDS tmp="$CACHE/lib.tmp.$$"
    rm -rf "$tmp"
    cp "$POM" "$CACHE/pom.xml"
    if ! "$MVN" -B -q -f "$CACHE/pom.xml" \
          -Dkafka.version="$KAFKA_VERSION" \
          dependency:copy-dependencies \
          -DincludeScope=runtime -DoutputDirectory="$tmp" >"$CACHE/mvn.log" 2>&1; then
      tail -n 40 "$CACHE/mvn.log" >&2
      rm -rf "$tmp"
      die "mvn failed to resolve Kafka $KAFKA_VERSION (full log: $CACHE/mvn.log)"
    fi
    ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "no kafka_2.13 jar in $tmp"
    ls "$tmp"/kafka-tools-[0-9]*.jar >/dev/null 2>&1 || die "no kafka-tools jar in $tmp"
    pom_sum >"$tmp/.complete"
    rm -rf "$LIB"
    mv "$tmp" "$LIB"
    log "resolved $(find "$LIB" -name '*.jar' | wc -l) jars in $((SECONDS - t0)) s"
  fi
  exec 8>&-
}

# Base64url of 16 random bytes = a Kafka Uuid string (what
# `kafka-storage.sh random-uuid` prints). Like Uuid.randomUuid(), avoid a
# leading '-', which the tool's argument parser would take for an option.
random_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* ]] && { echo "$id"; return; }
  done
}

write_config() {
  mkdir -p "$DIR"
  {
    echo "# Generated by scripts/kafka/kafka.sh for Kafka $KAFKA_VERSION; overwritten on every start."
    echo "process.roles=broker,controller"
    echo "node.id=1"
    # Static single-voter quorum: supported by 3.9 and 4.x and needs no
    # --standalone/--initial-controllers flag at format time.
    echo "controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT"
    echo "controller.listener.names=CONTROLLER"
    if (( SASL_SSL == 1 )); then
      echo "listeners=SASL_SSL://127.0.0.1:$PORT,INTERNAL://127.0.0.1:$INTERNAL_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT"
      echo "advertised.listeners=SASL_SSL://127.0.0.1:$PORT,INTERNAL://127.0.0.1:$INTERNAL_PORT"
      echo "listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
      echo "inter.broker.listener.name=INTERNAL"
      echo "sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN"
      # SCRAM users live in the cluster metadata (created at format time);
      # PLAIN's user is listed here.
      echo "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
      echo "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
      echo "listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER=\"$SASL_PASSWORD\";"
      # Key and certificate chain in one PEM file (unencrypted PKCS#8 key).
      echo "ssl.keystore.type=PEM"
      echo "ssl.keystore.location=$TLS_DIR/server.keystore.pem"
      echo "ssl.client.auth=none"
    else
      echo "listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT"
      echo "advertised.listeners=PLAINTEXT://127.0.0.1:$PORT"
      echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
      echo "inter.broker.listener.name=PLAINTEXT"
    fi
    echo "log.dirs=$DATA"
    echo "num.partitions=4"
    echo "default.replication.factor=1"
    echo "auto.create.topics.enable=true"
    echo "offsets.topic.replication.factor=1"
    echo "transaction.state.log.replication.factor=1"
    echo "transaction.state.log.min.isr=1"
    echo "group.initial.rebalance.delay.ms=0"
    # schemas.MaxMessageBytes: the pipeline's message limit, as the embedded
    # broker and docker-compose.yml have it.
    echo "message.max.bytes=33554432"
    echo "replica.fetch.max.bytes=33554432"
    if [[ "$LINE" == 4 ]]; then
      # Share-group state topic (Kafka 4.x only) defaults to RF 3.
      echo "share.coordinator.state.topic.replication.factor=1"
      echo "share.coordinator.state.topic.min.isr=1"
    fi
  } >"$PROPS"

  # Logging: everything to stdout, which start redirects to kafka.log.
  # Kafka 4 logs through Log4j 2, Kafka 3.9 through Log4j 1 (reload4j).
  cat >"$DIR/log4j2.properties" <<'EOF'
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
  cat >"$DIR/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
EOF
}

# --sasl-ssl: a CA and a server certificate for 127.0.0.1 and localhost
# (EC P-256, 30 days), made with openssl into DIR/tls unless --keep-data
# finds them there. ca.pem is what clients trust.
make_tls() {
  if (( KEEP_DATA == 1 )) && [[ -f "$TLS_DIR/server.keystore.pem" && -f "$TLS_DIR/ca.pem" ]]; then
    return 0
  fi
  command -v openssl >/dev/null || die "openssl not found (needed for --sasl-ssl)"
  rm -rf "$TLS_DIR"
  mkdir -p "$TLS_DIR"
  (
    cd "$TLS_DIR"
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout ca.key -out ca.pem -days 30 -subj "/CN=domainflow test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout server.key -out server.csr -subj "/CN=127.0.0.1"
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "extendedKeyUsage=serverAuth" \
      "keyUsage=critical,digitalSignature,keyAgreement" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
      -days 30 -extfile server.ext -out server.pem
    cat server.key server.pem ca.pem >server.keystore.pem
    rm -f server.csr server.ext
    chmod 644 ca.pem
  ) >"$DIR/tls.log" 2>&1 || { cat "$DIR/tls.log" >&2; die "openssl failed to make the test CA and certificate"; }
}

# --sasl-ssl: the client properties for Kafka's CLI tools (--command-config).
write_client_config() {
  {
    echo "# Generated by scripts/kafka/kafka.sh: a Kafka CLI tool's --command-config for 127.0.0.1:$PORT."
    echo "security.protocol=SASL_SSL"
    echo "sasl.mechanism=SCRAM-SHA-512"
    echo "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$SASL_USER\" password=\"$SASL_PASSWORD\";"
    echo "ssl.truststore.type=PEM"
    echo "ssl.truststore.location=$TLS_DIR/ca.pem"
  } >"$CLIENT_CONFIG"
}

# What `start` prints on stdout: the bootstrap address and, with --sasl-ssl,
# how to reach it.
print_env() {
  echo "KAFKA_BROKERS=127.0.0.1:$PORT"
  if [[ "$(cat "$SECURITY_FILE" 2>/dev/null || echo PLAINTEXT)" == SASL_SSL ]]; then
    echo "KAFKA_SECURITY=SASL_SSL"
    echo "KAFKA_TLS_CA=$TLS_DIR/ca.pem"
    echo "KAFKA_SASL_USER=$SASL_USER"
    echo "KAFKA_SASL_PASSWORD=$SASL_PASSWORD"
    echo "KAFKA_CLIENT_CONFIG=$CLIENT_CONFIG"
  fi
}

# JVM flags shared by the storage tool and the broker.
jvm_opts() {
  # shellcheck disable=SC2206
  local heap=(${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}) extra=(${KAFKA_JVM_OPTS:-})
  printf '%s\n' "${heap[@]}" \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$DIR/log4j2.properties" \
    "-Dlog4j.configuration=file:$DIR/log4j.properties" \
    "${extra[@]}"
}

# ---------------------------------------------------------------- commands

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    echo "running pid=$pid version=$(cat "$VERSION_FILE" 2>/dev/null || echo '?') security=$(cat "$SECURITY_FILE" 2>/dev/null || echo PLAINTEXT) KAFKA_BROKERS=127.0.0.1:$PORT dir=$DIR"
    return 0
  fi
  echo "not running (dir=$DIR)"
  return 3
}

cmd_stop() {
  lock_dir
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    log "not running (dir=$DIR)"
    return 0
  fi
  log "stopping broker pid=$pid"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS >= deadline )); then
      log "still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_start() {
  lock_dir
  local pid
  # Already running in this DIR: same version -> report it, else refuse.
  if pid="$(running_pid)"; then
    local have
    have="$(cat "$VERSION_FILE" 2>/dev/null || echo '?')"
    [[ "$have" == "$KAFKA_VERSION" ]] \
      || die "a Kafka $have broker (pid $pid) already runs in $DIR; stop it first"
    local mode want=PLAINTEXT
    mode="$(cat "$SECURITY_FILE" 2>/dev/null || echo PLAINTEXT)"
    (( SASL_SSL == 1 )) && want=SASL_SSL
    [[ "$mode" == "$want" ]] \
      || die "a $mode broker (pid $pid) already runs in $DIR, not $want; stop it first"
    port_open "$PORT" || die "broker pid $pid runs but 127.0.0.1:$PORT does not answer"
    log "already running (pid $pid, Kafka $have, $mode)"
    print_env
    return 0
  fi
  rm -f "$PID_FILE"

  # Someone else holds our ports: fail instead of pointing tests at it.
  local ports=("$PORT" "$CONTROLLER_PORT")
  (( SASL_SSL == 1 )) && ports+=("$INTERNAL_PORT")
  for p in "${ports[@]}"; do
    if port_open "$p"; then
      die "127.0.0.1:$p is already in use by another process (pick another --port)"
    fi
  done

  command -v "$JAVA" >/dev/null || die "java not found"
  # Kafka 4 brokers need Java 17+, 3.9 brokers Java 11+.
  local java_major need=11
  [[ "$LINE" == 4 ]] && need=17
  java_major="$("$JAVA" -version 2>&1 | sed -n 's/.* version "\([0-9]*\)[."].*/\1/p' | head -n 1)"
  if [[ -n "$java_major" ]] && (( java_major < need )); then
    die "Kafka $KAFKA_VERSION needs Java $need+, $JAVA is Java $java_major"
  fi
  resolve_jars
  write_config
  echo "$KAFKA_VERSION" >"$VERSION_FILE"
  local -a scram=()
  if (( SASL_SSL == 1 )); then
    make_tls
    write_client_config
    echo SASL_SSL >"$SECURITY_FILE"
    scram=(--add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]"
           --add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$SASL_PASSWORD]")
  else
    echo PLAINTEXT >"$SECURITY_FILE"
    rm -f "$CLIENT_CONFIG"
  fi

  local -a opts
  mapfile -t opts < <(jvm_opts)

  if (( KEEP_DATA == 1 )) && [[ -f "$DATA/meta.properties" ]]; then
    log "restarting on the existing log dir $DATA"
  else
    # Fresh, empty cluster on every start.
    rm -rf "$DATA"
    local cluster_id
    cluster_id="$(random_cluster_id)"
    log "formatting $DATA (Kafka $KAFKA_VERSION, cluster id $cluster_id)"
    if ! "$JAVA" "${opts[@]}" -cp "$LIB/*" kafka.tools.StorageTool \
          format -t "$cluster_id" -c "$PROPS" "${scram[@]}" >"$DIR/format.log" 2>&1 9>&-; then
      cat "$DIR/format.log" >&2
      die "formatting the log dir failed"
    fi
  fi

  # The readiness probe speaks PLAINTEXT: with --sasl-ssl it goes to the
  # internal listener.
  local probe_port="$PORT" what="127.0.0.1:$PORT"
  if (( SASL_SSL == 1 )); then
    probe_port="$INTERNAL_PORT"
    what="127.0.0.1:$PORT (SASL_SSL; internal PLAINTEXT 127.0.0.1:$INTERNAL_PORT)"
  fi
  log "starting broker on $what (controller 127.0.0.1:$CONTROLLER_PORT), log $LOG_FILE"
  local t0=$SECONDS
  # nohup execs java, so $! is the JVM's pid. stdin from /dev/null and the
  # lock fd closed so the broker is fully detached from this shell.
  nohup "$JAVA" "${opts[@]}" -cp "$LIB/*" kafka.Kafka "$PROPS" \
    </dev/null >"$LOG_FILE" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  # Not our job any more: no "Killed" notice from bash if we must kill it.
  disown "$pid" 2>/dev/null || true

  # Ready = port accepts connections AND the broker logged "Kafka Server
  # started" AND it answers a FindCoordinator request with error 0. The last
  # check makes the broker create __consumer_offsets now: otherwise the first
  # consumer group of a test gets COORDINATOR_NOT_AVAILABLE and kafka-go's
  # Reader sleeps JoinGroupBackoff (5 s) before retrying.
  local deadline=$((SECONDS + START_TIMEOUT)) started=0 fc=""
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      show_log_tail
      die "broker exited during startup"
    fi
    if (( started == 0 )) && port_open "$PORT" && port_open "$probe_port" && broker_started; then
      started=1
      log "broker started in $((SECONDS - t0)) s; waiting for the group coordinator"
    fi
    if (( started == 1 )); then
      fc="$(find_coordinator_error "$probe_port" || true)"
      [[ "$fc" == 0000 ]] && break
    fi
    if (( SECONDS >= deadline )); then
      show_log_tail
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      if (( started == 1 )); then
        die "broker started but FindCoordinator still fails (error code 0x${fc:-no answer}) after ${START_TIMEOUT}s (killed it)"
      fi
      die "broker not ready after ${START_TIMEOUT}s (killed it)"
    fi
    sleep 0.25
  done
  log "ready in $((SECONDS - t0)) s (pid $pid)"
  print_env
}

# Main classes of the CLI tools, as bin/NAME.sh of the release names them
# (3.9 still has a few in the core jar, 4.x has them all in kafka-tools).
tool_class() {
  case "${1%.sh}" in
    kafka-topics)              echo org.apache.kafka.tools.TopicCommand ;;
    kafka-consumer-groups)     echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    kafka-console-consumer)    echo org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    kafka-get-offsets)         echo org.apache.kafka.tools.GetOffsetShell ;;
    kafka-console-producer)    [[ "$LINE" == 4 ]] && echo org.apache.kafka.tools.ConsoleProducer || echo kafka.tools.ConsoleProducer ;;
    kafka-configs)             [[ "$LINE" == 4 ]] && echo org.apache.kafka.tools.ConfigCommand || echo kafka.admin.ConfigCommand ;;
    kafka-acls)                [[ "$LINE" == 4 ]] && echo org.apache.kafka.tools.AclCommand || echo kafka.admin.AclCommand ;;
    kafka-broker-api-versions) [[ "$LINE" == 4 ]] && echo org.apache.kafka.tools.BrokerApiVersionsCommand || echo kafka.admin.BrokerApiVersionsCommand ;;
    *.*)                       echo "$1" ;;  # a main class
    *) return 1 ;;
  esac
}

cmd_tool() {
  [[ -n "$TOOL" ]] || { log "tool: which one? (kafka-topics, kafka-consumer-groups, ...)"; usage; }
  local class
  class="$(tool_class "$TOOL")" || die "unknown tool '$TOOL' (kafka-topics, kafka-consumer-groups, kafka-console-producer, kafka-console-consumer, kafka-get-offsets, kafka-configs, kafka-acls, kafka-broker-api-versions, or a main class)"
  command -v "$JAVA" >/dev/null || die "java not found"
  resolve_jars
  # Log lines at WARN and above to stderr, as the release's tools-log4j
  # configuration has it (Log4j 2 on 4.x, reload4j on 3.9).
  local conf="$CACHE/tools-log4j2.properties" conf1="$CACHE/tools-log4j.properties"
  if [[ ! -f "$conf" || ! -f "$conf1" ]]; then
    printf '%s\n' "status = warn" "appender.stderr.type = Console" "appender.stderr.name = STDERR" \
      "appender.stderr.target = SYSTEM_ERR" "appender.stderr.layout.type = PatternLayout" \
      "appender.stderr.layout.pattern = [%d] %p %m (%c)%n" "rootLogger.level = WARN" \
      "rootLogger.appenderRef.stderr.ref = STDERR" >"$conf.$$" && mv "$conf.$$" "$conf"
    printf '%s\n' "log4j.rootLogger=WARN, stderr" "log4j.appender.stderr=org.apache.log4j.ConsoleAppender" \
      "log4j.appender.stderr.Target=System.err" "log4j.appender.stderr.layout=org.apache.log4j.PatternLayout" \
      "log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n" >"$conf1.$$" && mv "$conf1.$$" "$conf1"
  fi
  # A short-lived JVM: small heap, C1 only, serial GC, and SecureRandom
  # seeded from /dev/urandom (TLS and SCRAM otherwise wait for entropy):
  # about 2 s a run, 3 s over SASL_SSL.
  # shellcheck disable=SC2206
  local extra=(${KAFKA_TOOL_JVM_OPTS:-})
  exec "$JAVA" -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Djava.security.egd=file:/dev/urandom \
    "-Dlog4j2.configurationFile=$conf" "-Dlog4j.configuration=file:$conf1" "${extra[@]}" \
    -cp "$LIB/*" "$class" "${TOOL_ARGS[@]}"
}

case "$CMD" in
  start)  cmd_start ;;
  stop)   cmd_stop ;;
  status) cmd_status ;;
  tool)   cmd_tool ;;
  *) usage ;;
esac
