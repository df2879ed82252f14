#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, combined broker+controller) for
# development and CI. No Docker, no downloads besides Maven Central.
#
#   bash deploy/local/kafka.sh fetch    # fetch the pinned broker jars (once)
#   bash deploy/local/kafka.sh up       # start (idempotent) and wait until it answers
#   bash deploy/local/kafka.sh status   # running / not running (exit 0 if running)
#   bash deploy/local/kafka.sh down     # stop (idempotent)
#   bash deploy/local/kafka.sh reset    # down + delete the broker's data
#
# Environment:
#   KAFKA_BOOTSTRAP_SERVERS  if set to anything but the local default, `up`/`status`
#                            start nothing and only check that it is reachable
#   KAFKA_PORT               client listener port      (default 9092)
#   KAFKA_CONTROLLER_PORT    KRaft controller port     (default 9093)
#   KAFKA_HEAP_OPTS          JVM heap                  (default -Xms256m -Xmx768m)
#   KAFKA_UP_TIMEOUT         seconds `up` waits        (default 90)
#   KAFKA_STOP_TIMEOUT       seconds `down` waits before SIGKILL (default 30)
#   JAVA_HOME                java is $JAVA_HOME/bin/java, else `java` on PATH
#
# Layout (all relative to the repository root, git-ignored):
#   deploy/local/jars/       broker jars (from deploy/local/pom.xml)
#   .local/kafka/            server.properties, log4j.properties, kafka.pid
#   .local/kafka/data/       KRaft metadata + topic data (kept across up/down)
#   .local/logs/kafka.log    broker log
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

POM="$HERE/pom.xml"
JARS_DIR="$HERE/jars"
MARKER="$JARS_DIR/.complete"
STATE_DIR="$ROOT/.local/kafka"
DATA_DIR="$STATE_DIR/data"
LOG_DIR="$ROOT/.local/logs"
LOG_FILE="$LOG_DIR/kafka.log"
PID_FILE="$STATE_DIR/kafka.pid"
SERVER_PROPS="$STATE_DIR/server.properties"
LOG4J_PROPS="$STATE_DIR/log4j.properties"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
LOCAL_BOOTSTRAP="127.0.0.1:${KAFKA_PORT}"
UP_TIMEOUT="${KAFKA_UP_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
PYTHON="${PYTHON:-python3}"

# The single source of truth for the version is the pom.
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1)"

log() { printf '[kafka] %s\n' "$*"; }
die() { printf '[kafka] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- helpers

java_bin() {
  if [[ -n "${JAVA_HOME:-}" && -x "${JAVA_HOME}/bin/java" ]]; then
    printf '%s\n' "${JAVA_HOME}/bin/java"
  elif command -v java >/dev/null 2>&1; then
    command -v java
  else
    return 1
  fi
}

require_java() {
  local java ver major
  java="$(java_bin)" || die "java not found. Install a JDK/JRE 17 (Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME."
  ver="$("$java" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)"
  major="${ver%%.*}"
  [[ "$major" == "1" ]] && major="$(cut -d. -f2 <<<"$ver")"
  if [[ "$major" =~ ^[0-9]+$ ]] && (( major < 11 )); then
    die "$java is Java $ver; Kafka $KAFKA_VERSION needs Java 11+ (17 recommended: apt-get install -y openjdk-17-jre-headless)."
  fi
  JAVA="$java"
}

require_python() {
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; it is needed for the readiness check (install python3)."
}

jars_complete() {
  [[ -f "$MARKER" ]] && [[ "$(cat "$MARKER")" == "$(expected_marker)" ]]
}

expected_marker() {
  printf 'kafka=%s pom-sha256=%s\n' "$KAFKA_VERSION" "$(sha256sum "$POM" | cut -d' ' -f1)"
}

# Probe a bootstrap list ("h1:p1,h2:p2", optional PLAINTEXT:// prefixes) with real
# Kafka requests: ApiVersions must succeed and Metadata must list >= 1 live broker.
# An open port alone does not count. Exit 0 if any server answers properly.
probe() {
  "$PYTHON" - "$1" "${2:-2}" <<'PY'
import socket, struct, sys

servers, timeout = sys.argv[1], float(sys.argv[2])

def request(sock, api_key, version, corr, body=b""):
    client = b"kafka.sh"
    header = struct.pack(">hhih", api_key, version, corr, len(client)) + client
    msg = header + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    size = struct.unpack(">i", recv(sock, 4))[0]
    data = recv(sock, size)
    if struct.unpack(">i", data[:4])[0] != corr:
        raise IOError("correlation id mismatch")
    return data[4:]

def recv(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise IOError("connection closed")
        buf += chunk
    return buf

def check(host, port):
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        # ApiVersions v0: error_code int16 first.
        err = struct.unpack(">h", request(s, 18, 0, 1)[:2])[0]
        if err:
            raise IOError("ApiVersions error %d" % err)
        # Metadata v1 with null topic list: brokers array comes first.
        resp = request(s, 3, 1, 2, struct.pack(">i", -1))
        nbrokers = struct.unpack(">i", resp[:4])[0]
        if nbrokers < 1:
            raise IOError("no live broker in metadata yet")
        return nbrokers

last = "no servers given"
for entry in [e.strip() for e in servers.split(",") if e.strip()]:
    if "://" in entry:
        entry = entry.split("://", 1)[1]
    host, _, port = entry.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        check(host, int(port))
        sys.exit(0)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        last = "%s: %s" % (entry, exc)
print(last, file=sys.stderr)
sys.exit(1)
PY
}

# Is the bootstrap configuration pointing somewhere other than our local broker?
external_bootstrap() {
  local b="${KAFKA_BOOTSTRAP_SERVERS:-}"
  b="${b#PLAINTEXT://}"
  [[ -n "$b" && "$b" != "$LOCAL_BOOTSTRAP" && "$b" != "localhost:${KAFKA_PORT}" ]]
}

# Prints the pid of the broker we started, if it is alive; else returns 1.
our_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against pid reuse: it must be a kafka.Kafka using our config.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $SERVER_PROPS" || return 1
  printf '%s\n' "$pid"
}

# host:port of the PLAINTEXT listener our running broker was started with.
running_bootstrap() {
  sed -n 's|^listeners=PLAINTEXT://\([^,]*\),.*|\1|p' "$SERVER_PROPS" 2>/dev/null | head -n1
}

port_in_use() {
  "$PYTHON" - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(0.5)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}

log_tail() {
  if [[ -f "$LOG_FILE" ]]; then
    echo "----- last 40 lines of $LOG_FILE -----" >&2
    tail -n 40 "$LOG_FILE" >&2
    echo "-----" >&2
  fi
}

classpath() { printf '%s/*\n' "$JARS_DIR"; }

# Wait until $1 answers or $2 seconds pass; if $3 is a pid, fail fast when it dies.
wait_ready() {
  local bootstrap="$1" timeout="$2" pid="${3:-}" start now elapsed next_note=0 err=""
  start=$(date +%s)
  while :; do
    if err="$(probe "$bootstrap" 2 2>&1)"; then
      return 0
    fi
    now=$(date +%s); elapsed=$((now - start))
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      log "broker process $pid exited during startup"
      return 2
    fi
    if (( elapsed >= timeout )); then
      log "still not answering after ${elapsed}s (${err:-no answer})"
      return 1
    fi
    if (( elapsed >= next_note )); then
      log "waiting for $bootstrap to answer... ${elapsed}s"
      next_note=$((elapsed + 5))
    fi
    sleep 1
  done
}

write_configs() {
  mkdir -p "$STATE_DIR" "$DATA_DIR" "$LOG_DIR"
  cat >"$SERVER_PROPS" <<EOF
# Generated by deploy/local/kafka.sh on every 'up'; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${KAFKA_CONTROLLER_PORT}
listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT},CONTROLLER://127.0.0.1:${KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=${DATA_DIR}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=168
log.segment.bytes=104857600
EOF
  # Kafka 3.9 configures logging via a log4j 1.x properties file (reload4j).
  # Everything goes to stdout, which the launcher appends to .local/logs/kafka.log
  # together with anything the JVM itself prints.
  cat >"$LOG4J_PROPS" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.authorizer.logger=WARN
log4j.logger.org.apache.zookeeper=WARN
EOF
}

java_opts() {
  # shellcheck disable=SC2206
  JAVA_OPTS=($HEAP_OPTS
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true
    "-Dlog4j.configuration=file:${LOG4J_PROPS}"
    "-Dkafka.logs.dir=${LOG_DIR}")
}

format_once() {
  if [[ -f "$DATA_DIR/meta.properties" ]]; then
    return 0
  fi
  local cluster_id
  cluster_id="$("$JAVA" "${JAVA_OPTS[@]}" -cp "$(classpath)" kafka.tools.StorageTool random-uuid 2>>"$LOG_FILE" | tail -n1)"
  [[ -n "$cluster_id" ]] || { log_tail; die "could not generate a cluster id"; }
  log "formatting storage in ${DATA_DIR#"$ROOT"/} (cluster id $cluster_id)"
  if ! "$JAVA" "${JAVA_OPTS[@]}" -cp "$(classpath)" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$SERVER_PROPS" >>"$LOG_FILE" 2>&1; then
    log_tail
    die "formatting storage failed"
  fi
}

# ---------------------------------------------------------------- commands

cmd_fetch() {
  [[ -n "$KAFKA_VERSION" ]] || die "could not read <kafka.version> from $POM"
  if jars_complete; then
    log "jars for Kafka $KAFKA_VERSION already present in ${JARS_DIR#"$ROOT"/}"
    return 0
  fi
  require_java
  command -v mvn >/dev/null 2>&1 || die "mvn not found; it is needed once to fetch the Kafka jars from Maven Central. Install Maven (Debian/Ubuntu: apt-get install -y maven)."
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into ${JARS_DIR#"$ROOT"/}"
  mkdir -p "$ROOT/.local/tmp"
  local tmp out
  tmp="$(mktemp -d "$ROOT/.local/tmp/jars.XXXXXX")"
  out="$tmp.mvn.log"
  if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      -DoutputDirectory="$tmp/jars" >"$out" 2>&1; then
    cat "$out" >&2
    rm -rf "$tmp" "$out"
    die "mvn could not fetch the Kafka jars (see above)"
  fi
  if [[ ! -f "$tmp/jars/kafka_2.13-$KAFKA_VERSION.jar" ]]; then
    rm -rf "$tmp" "$out"
    die "fetch finished but kafka_2.13-$KAFKA_VERSION.jar is missing"
  fi
  expected_marker >"$tmp/jars/.complete"
  rm -rf "$JARS_DIR"
  mv "$tmp/jars" "$JARS_DIR"
  rm -rf "$tmp" "$out"
  log "fetched $(find "$JARS_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$JARS_DIR" | cut -f1))"
}

cmd_up() {
  require_python
  if external_bootstrap; then
    log "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS is not the local default; starting nothing"
    if wait_ready "$KAFKA_BOOTSTRAP_SERVERS" "${KAFKA_EXTERNAL_TIMEOUT:-15}"; then
      log "Kafka at $KAFKA_BOOTSTRAP_SERVERS is reachable"
      return 0
    fi
    die "Kafka at $KAFKA_BOOTSTRAP_SERVERS is NOT reachable"
  fi

  local pid running
  if pid="$(our_pid)"; then
    running="$(running_bootstrap)"
    if [[ -n "$running" && "$running" != "$LOCAL_BOOTSTRAP" ]]; then
      die "our broker (pid $pid) is already running on $running, not $LOCAL_BOOTSTRAP; run 'bash deploy/local/kafka.sh down' first to change ports"
    fi
    if wait_ready "$LOCAL_BOOTSTRAP" "$UP_TIMEOUT" "$pid"; then
      log "already running (pid $pid), bootstrap $LOCAL_BOOTSTRAP"
      return 0
    fi
    log_tail
    die "broker (pid $pid) is running but not answering on $LOCAL_BOOTSTRAP; try: bash deploy/local/kafka.sh down"
  fi
  rm -f "$PID_FILE"

  cmd_fetch
  require_java

  if port_in_use "$KAFKA_PORT"; then
    if probe "$LOCAL_BOOTSTRAP" 2 2>/dev/null; then
      log "a Kafka broker not started by this script already answers on $LOCAL_BOOTSTRAP; using it ('down' will not stop it)"
      return 0
    fi
    die "port $KAFKA_PORT is taken by something that is not a Kafka broker; free it or set KAFKA_PORT"
  fi
  if port_in_use "$KAFKA_CONTROLLER_PORT"; then
    die "controller port $KAFKA_CONTROLLER_PORT is taken; free it or set KAFKA_CONTROLLER_PORT"
  fi

  write_configs
  java_opts
  format_once

  log "starting Kafka $KAFKA_VERSION on $LOCAL_BOOTSTRAP (log: ${LOG_FILE#"$ROOT"/})"
  printf '\n===== %s kafka.sh up (Kafka %s) =====\n' "$(date -Is)" "$KAFKA_VERSION" >>"$LOG_FILE"
  # Every partition keeps a few files open: a long test session creates thousands of them.
  # Raise the soft limit (and the hard one where we may) instead of dying with "Too many open
  # files" mid-run.
  ulimit -Hn 262144 2>/dev/null || true
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  local launcher=()
  command -v setsid >/dev/null 2>&1 && launcher=(setsid)
  # The inner shell records its own pid and then execs java, so the pid file
  # always names the JVM, whether or not setsid forks. setsid keeps the broker
  # out of the caller's process group (a Ctrl-C in the caller does not kill it).
  # shellcheck disable=SC2016  # $$/$1/$@ are for the inner shell
  ${launcher[@]+"${launcher[@]}"} bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PID_FILE" \
    "$JAVA" "${JAVA_OPTS[@]}" -cp "$(classpath)" kafka.Kafka "$SERVER_PROPS" \
    </dev/null >>"$LOG_FILE" 2>&1 &
  local _
  for _ in $(seq 1 50); do [[ -s "$PID_FILE" ]] && break; sleep 0.1; done
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ -n "$pid" ]] || { log_tail; die "broker did not start"; }

  local rc=0
  wait_ready "$LOCAL_BOOTSTRAP" "$UP_TIMEOUT" "$pid" || rc=$?
  if (( rc == 0 )); then
    log "ready: pid $pid, bootstrap $LOCAL_BOOTSTRAP"
    return 0
  fi
  log_tail
  if (( rc == 1 )); then
    log "timed out after ${UP_TIMEOUT}s; stopping the half-started broker"
    cmd_down >/dev/null 2>&1 || true
  fi
  rm -f "$PID_FILE"
  die "Kafka did not come up (full log: $LOG_FILE)"
}

cmd_down() {
  local pid
  if ! pid="$(our_pid)"; then
    if [[ -f "$PID_FILE" ]]; then
      rm -f "$PID_FILE"
      log "not running (removed stale pid file)"
    else
      log "not running; nothing to stop"
    fi
    return 0
  fi
  log "stopping broker (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    if (( waited >= STOP_TIMEOUT * 10 )); then
      log "still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  require_python
  if external_bootstrap; then
    if probe "$KAFKA_BOOTSTRAP_SERVERS" 2 2>/dev/null; then
      log "external Kafka reachable, bootstrap $KAFKA_BOOTSTRAP_SERVERS"
      return 0
    fi
    log "external Kafka NOT reachable, bootstrap $KAFKA_BOOTSTRAP_SERVERS"
    return 1
  fi
  local pid running
  if pid="$(our_pid)"; then
    running="$(running_bootstrap)"
    running="${running:-$LOCAL_BOOTSTRAP}"
    if probe "$running" 2 2>/dev/null; then
      log "running (pid $pid), bootstrap $running"
    else
      log "running (pid $pid) but not answering yet, bootstrap $running"
    fi
    return 0
  fi
  log "not running (bootstrap would be $LOCAL_BOOTSTRAP)"
  return 1
}

cmd_reset() {
  cmd_down
  if [[ -d "$DATA_DIR" ]]; then
    rm -rf "$DATA_DIR"
    log "deleted ${DATA_DIR#"$ROOT"/}"
  else
    log "no data to delete"
  fi
}

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
