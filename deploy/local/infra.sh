#!/usr/bin/env bash
# Local infrastructure for Clarion: Kafka (KRaft, single node), PostgreSQL and
# FerretDB (MongoDB wire protocol on top of PostgreSQL). No Docker needed.
#
#   deploy/local/infra.sh install   resolve/build/install everything, start nothing
#   deploy/local/infra.sh up        install if needed, start what is not running,
#                                   wait until ready, start the supervisor, print the
#                                   env lines (stdout)
#   deploy/local/infra.sh down      stop the supervisor, then what this script started
#   deploy/local/infra.sh restart kafka|postgres|ferretdb
#                                   stop one component (also when wedged) and start it
#                                   again; what the supervisor runs
#   deploy/local/infra.sh status    show what runs where
#   deploy/local/infra.sh env       print `export KAFKA_BOOTSTRAP_SERVERS=...` and
#                                   `export MONGODB_URL=...`
#   deploy/local/infra.sh clean     down, then delete the data dir
#
# Progress goes to stderr and env lines to stdout, so `eval "$(infra.sh up)"` works.
# If KAFKA_BOOTSTRAP_SERVERS is already set, Kafka is neither installed nor
# started (nor supervised); same for MONGODB_URL and PostgreSQL+FerretDB.
# CLARION_SUPERVISE=0: no supervisor. See README.md.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

CACHE_DIR="${CLARION_CACHE_DIR:-$HOME/.cache/clarion}"
DATA_DIR="${CLARION_DATA_DIR:-$REPO_ROOT/.local}"
LOG_DIR="$DATA_DIR/logs"
PID_DIR="$DATA_DIR/pids"

KAFKA_PORT="${CLARION_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${CLARION_KAFKA_CONTROLLER_PORT:-19093}"
PG_PORT="${CLARION_PG_PORT:-15432}"
MONGO_PORT="${CLARION_MONGO_PORT:-27018}"
READY_TIMEOUT="${CLARION_READY_TIMEOUT:-90}"
# FerretDB logs every unsupported command at WARN (e.g. pymongo's endSessions on
# each client close), so the default is ERROR.
FERRETDB_LOG_LEVEL="${CLARION_FERRETDB_LOG_LEVEL:-error}"
# FerretDB's PostgreSQL pool. FerretDB 1.24 holds one of its connections per stored
# document an update command matched, until the command ends, and one more to write:
# commands that together hold the whole pool wait on each other for ever (issue 6,
# finding 8). The services send one update per command and at most
# CLARION_MONGO_MAX_POOL_SIZE (25) commands each: 4 services waiting on a second
# connection hold at most 100 of 200.
FERRETDB_PG_POOL="${CLARION_FERRETDB_PG_POOL:-200}"
FERRETDB_GIN="${CLARION_FERRETDB_GIN:-true}"
# On the command line, not only in postgresql.conf: a data dir made before keeps its conf.
PG_MAX_CONNECTIONS=$((FERRETDB_PG_POOL + 100))
STOP_TIMEOUT="${CLARION_STOP_TIMEOUT:-30}"

FERRETDB_VERSION="v1.24.2"
KAFKA_POM="$SCRIPT_DIR/kafka/pom.xml"
JAVA_BIN="${JAVA:-${JAVA_HOME:+$JAVA_HOME/bin/}java}"
# Readiness probes: `python -m clarion_devtools.probe kafka|mongo HOST:PORT` (aiokafka,
# pymongo) on the workspace's venv, which `make install` creates; every make target
# that calls this script depends on `install`. Only `up` and `status` need it
# (need_venv); `down`, `env` and `clean` must keep working without it, e.g. after
# `make clean` deleted .venv while the servers still run.
VENV_PYTHON="$REPO_ROOT/.venv/bin/python"
PROBE=("$VENV_PYTHON" -m clarion_devtools.probe)
# Fallback: two stdlib-only one-liners (a Kafka cluster id, FerretDB's module dir)
# keep using a system python, because the venv cannot be relied on there: `infra.sh
# install` builds FerretDB and may run on a fresh clone before `make install`.
PYTHON_BIN="${PYTHON:-python3}"

KAFKA_DIR="$DATA_DIR/kafka"
FERRET_DIR="$DATA_DIR/ferretdb"
FERRET_BIN="$CACHE_DIR/ferretdb/ferretdb-$FERRETDB_VERSION"

# ------------------------------------------------------------------ helpers
log() { printf '[infra] %s\n' "$*" >&2; }
die() { printf '[infra] ERROR: %s\n' "$*" >&2; exit 1; }

# die with the tail of one or more log files
die_log() {
  local msg="$1"; shift
  printf '[infra] ERROR: %s\n' "$msg" >&2
  local f
  for f in "$@"; do
    if [[ -s "$f" ]]; then
      printf '[infra] ---- last 30 lines of %s ----\n' "$f" >&2
      tail -n 30 "$f" >&2 || true
      printf '[infra] ---- end of %s ----\n' "$f" >&2
    else
      printf '[infra] (log %s is empty or missing)\n' "$f" >&2
    fi
  done
  exit 1
}

want_kafka() { [[ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; }
want_mongo() { [[ -z "${MONGODB_URL:-}" ]]; }
is_root() { [[ "$(id -u)" == 0 ]]; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

now() { date +%s; }

ensure_dirs() { mkdir -p "$DATA_DIR" "$LOG_DIR" "$PID_DIR" "$CACHE_DIR"; }

# Serialise concurrent invocations: one lock for the data dir, one for the
# (shared between clones) cache dir. Started servers get `8>&- 9>&-` so they do
# not inherit (and hold) these locks.
lock_fd() {
  local fd="$1" file="$2"
  eval "exec $fd>\"\$file\""
  if ! flock -w 900 "$fd"; then
    die "timed out after 900s waiting for lock $file (another infra.sh run holds it; holders: $(fuser "$file" 2>/dev/null || echo unknown))"
  fi
}
lock_data() { lock_fd 8 "$PID_DIR/infra.lock"; }
lock_cache() { lock_fd 9 "$CACHE_DIR/infra.lock"; }

# pid_alive NAME MARKER: pid from $PID_DIR/NAME.pid is alive and its command line
# contains MARKER (guards against pid reuse). Prints the pid.
pid_alive() {
  local f="$PID_DIR/$1.pid" pid
  [[ -s "$f" ]] || return 1
  pid="$(<"$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$2"* ]] || return 1
  printf '%s' "$pid"
}

# stop_pid NAME MARKER: SIGTERM (and SIGCONT: a SIGSTOPped process acts on no other
# signal), wait STOP_TIMEOUT, then SIGKILL.
stop_pid() {
  local name="$1" marker="$2" pid i
  if ! pid="$(pid_alive "$name" "$marker")"; then
    rm -f "$PID_DIR/$name.pid"
    log "$name: not running"
    return 0
  fi
  log "$name: stopping pid $pid (SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$PID_DIR/$name.pid"
  log "$name: stopped"
}

# wait_ready NAME PID LOGFILE... -- CMD...: poll CMD until success, the process
# dies, or READY_TIMEOUT passes.
wait_ready() {
  local name="$1" pid="$2"; shift 2
  local logs=()
  while [[ "$1" != "--" ]]; do logs+=("$1"); shift; done
  shift
  local deadline=$(( $(now) + READY_TIMEOUT )) err=""
  while true; do
    if err="$("$@" 2>&1)"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      die_log "$name (pid $pid) exited during startup; logs: ${logs[*]}" "${logs[@]}"
    fi
    if (( $(now) >= deadline )); then
      die_log "$name not ready after ${READY_TIMEOUT}s (last probe: ${err:-no output}); logs: ${logs[*]}" "${logs[@]}"
    fi
    sleep 0.3
  done
}

need_cmd() { command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH ($2)"; }

# The venv the probes run on exists and has them (a venv synced before
# clarion_devtools existed would fail every probe until READY_TIMEOUT).
need_venv() {
  [[ -x "$VENV_PYTHON" ]] \
    || die "$VENV_PYTHON not found: the readiness probes run on the project's venv (aiokafka, pymongo); run 'make install' first"
  "$VENV_PYTHON" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("clarion_devtools.probe") is None)' 2>/dev/null \
    || die "$VENV_PYTHON cannot import clarion_devtools.probe (venv out of date?); run 'make install'"
}

# ------------------------------------------------------------------ kafka
kafka_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM" | head -n1; }
kafka_cp_file() { echo "$CACHE_DIR/kafka/classpath-$(sha256sum "$KAFKA_POM" | cut -c1-16).txt"; }

# classpath file exists and every jar it names is still in ~/.m2
kafka_cp_valid() {
  local f; f="$(kafka_cp_file)"
  [[ -s "$f" ]] || return 1
  local jar
  IFS=':' read -r -a jars <"$f"
  for jar in "${jars[@]}"; do [[ -f "$jar" ]] || return 1; done
}

kafka_install() {
  need_cmd "$JAVA_BIN" "Kafka needs Java 17+; install a JDK or set JAVA=/path/to/java"
  kafka_cp_valid && return 0
  lock_cache
  kafka_cp_valid && return 0
  need_cmd mvn "needed once to resolve the Kafka jars from Maven Central into ~/.m2"
  local f tmp ilog="$LOG_DIR/install-kafka.log"
  f="$(kafka_cp_file)"
  mkdir -p "$(dirname "$f")"
  tmp="$f.tmp.$$"
  log "kafka: resolving org.apache.kafka:kafka_2.13:$(kafka_version) with Maven (log: $ilog)"
  if ! mvn -B -q -f "$KAFKA_POM" dependency:build-classpath -Dmdep.outputFile="$tmp" >"$ilog" 2>&1; then
    rm -f "$tmp"
    die_log "Maven could not resolve the Kafka classpath from $KAFKA_POM; log: $ilog" "$ilog"
  fi
  mv "$tmp" "$f"
  kafka_cp_valid || die "kafka classpath $f names jars that do not exist"
  log "kafka: classpath cached in $f"
}

kafka_write_config() {
  mkdir -p "$KAFKA_DIR/data"
  cat >"$KAFKA_DIR/server.properties" <<EOF
# generated by deploy/local/infra.sh -- edits are overwritten on every start
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DIR/data
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=168
log.segment.bytes=67108864
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
EOF
  cat >"$KAFKA_DIR/log4j2.properties" <<'EOF'
# generated by deploy/local/infra.sh
status = warn
name = clarion-kafka
shutdownHook = disable
appender.server.type = RollingFile
appender.server.name = SERVER
appender.server.fileName = ${sys:kafka.logs.dir}/kafka-server.log
appender.server.filePattern = ${sys:kafka.logs.dir}/kafka-server.log.%i
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
appender.server.policies.type = Policies
appender.server.policies.size.type = SizeBasedTriggeringPolicy
appender.server.policies.size.size = 20MB
appender.server.strategy.type = DefaultRolloverStrategy
appender.server.strategy.max = 3
# WARN+ everywhere; INFO for server lifecycle and consumer-group activity
rootLogger.level = WARN
rootLogger.appenderRef.server.ref = SERVER
logger.raftserver.name = kafka.server.KafkaRaftServer
logger.raftserver.level = INFO
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = INFO
logger.groups.name = org.apache.kafka.coordinator.group.GroupMetadataManager
logger.groups.level = INFO
EOF
}

# sets KAFKA_JAVA: the java command line (without main class) for Kafka tools/server
kafka_java_cmd() {
  KAFKA_JAVA=("$JAVA_BIN" -Xms256m -Xmx512m -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties"
    -Dkafka.logs.dir="$LOG_DIR"
    -cp "$(<"$(kafka_cp_file)")")
}

kafka_format() {
  [[ -f "$KAFKA_DIR/data/meta.properties" ]] && return 0
  local cid flog="$LOG_DIR/kafka-format.log"
  # Kafka Uuid: url-safe base64 of 16 random bytes, no padding, not starting with '-'
  cid="$("$PYTHON_BIN" -c 'import base64,uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"): print(s); break')"
  kafka_java_cmd
  log "kafka: formatting storage in $KAFKA_DIR/data (cluster id $cid)"
  "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format --config "$KAFKA_DIR/server.properties" \
    --cluster-id "$cid" --ignore-formatted >"$flog" 2>&1 \
    || die_log "kafka storage format failed; log: $flog" "$flog"
}

kafka_pid() { pid_alive kafka "$KAFKA_DIR/server.properties"; }

# kafka_start: launch the broker if not running (does not wait); sets KAFKA_PID
KAFKA_PID=""
kafka_start() {
  kafka_install
  if KAFKA_PID="$(kafka_pid)"; then
    grep -qxF "listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT" "$KAFKA_DIR/server.properties" \
      || die "kafka is already running (pid $KAFKA_PID) with other ports ($(grep '^listeners=' "$KAFKA_DIR/server.properties")); run '$0 down' first to change CLARION_KAFKA_PORT / CLARION_KAFKA_CONTROLLER_PORT"
    log "kafka: already running (pid $KAFKA_PID)"
    return 0
  fi
  local p
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    port_open "$p" && die "kafka: port 127.0.0.1:$p is already in use by another process (not started by this script); set CLARION_KAFKA_PORT / CLARION_KAFKA_CONTROLLER_PORT or stop it"
  done
  kafka_write_config
  kafka_format
  kafka_java_cmd
  log "kafka: starting $(kafka_version) on 127.0.0.1:$KAFKA_PORT (log: $LOG_DIR/kafka-server.log)"
  printf '\n==== %s start ====\n' "$(date -Is)" | tee -a "$LOG_DIR/kafka-server.log" >>"$LOG_DIR/kafka.out"
  (
    cd "$KAFKA_DIR"
    exec setsid "${KAFKA_JAVA[@]}" kafka.Kafka "$KAFKA_DIR/server.properties"
  ) </dev/null >>"$LOG_DIR/kafka.out" 2>&1 8>&- 9>&- &
  KAFKA_PID=$!
  echo "$KAFKA_PID" >"$PID_DIR/kafka.pid"
}

kafka_wait() {
  wait_ready kafka "$KAFKA_PID" "$LOG_DIR/kafka-server.log" "$LOG_DIR/kafka.out" -- \
    "${PROBE[@]}" kafka "127.0.0.1:$KAFKA_PORT"
  log "kafka: ready on 127.0.0.1:$KAFKA_PORT"
}

# ------------------------------------------------------------------ postgres
PG_BIN=""
find_pg_bin() {
  local d
  PG_BIN=""
  for d in $(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V); do
    [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] && PG_BIN="$d"
  done
  if [[ -z "$PG_BIN" ]] && command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    PG_BIN="$(dirname "$(command -v pg_ctl)")"
  fi
  [[ -n "$PG_BIN" ]]
}

# As root, PostgreSQL runs as the `postgres` OS user, which must be able to reach
# the data dir. If it cannot (e.g. the repo lives under a 0700 home), use a
# per-data-dir folder under /var/tmp instead.
pg_dir() {
  local d="$DATA_DIR/postgres"
  if is_root && id postgres >/dev/null 2>&1 && [[ -d "$DATA_DIR" ]] \
     && ! runuser -u postgres -- test -x "$DATA_DIR" 2>/dev/null; then
    d="/var/tmp/clarion-pg-$(printf '%s' "$DATA_DIR" | sha256sum | cut -c1-12)"
  fi
  printf '%s' "$d"
}
pg_data() { printf '%s/data' "$(pg_dir)"; }
pg_sock() {
  local s; s="$(pg_dir)/run"
  # unix socket paths are limited to 107 bytes
  (( ${#s} + 20 > 107 )) && s="/tmp/clarion-pg-$(printf '%s' "$DATA_DIR" | sha256sum | cut -c1-12)"
  printf '%s' "$s"
}

as_pg() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_install() {
  find_pg_bin && return 0
  is_root || die "PostgreSQL binaries (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/*/bin and not running as root; install them: sudo apt-get install -y postgresql"
  local ilog="$LOG_DIR/install-postgres.log"
  log "postgres: installing Debian package postgresql with apt-get (log: $ilog)"
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql; } >"$ilog" 2>&1; then
    die_log "apt-get install postgresql failed; log: $ilog" "$ilog"
  fi
  find_pg_bin || die_log "postgresql installed but initdb/pg_ctl not found in /usr/lib/postgresql/*/bin; log: $ilog" "$ilog"
}

pg_running() { find_pg_bin && [[ -f "$(pg_data)/postmaster.pid" ]] && as_pg "$PG_BIN/pg_ctl" status -D "$(pg_data)" >/dev/null 2>&1; }

pg_initdb() {
  local data dir sock; data="$(pg_data)"; dir="$(pg_dir)"; sock="$(pg_sock)"
  mkdir -p "$dir" "$sock"
  if is_root; then
    id postgres >/dev/null 2>&1 || die "running as root but OS user 'postgres' does not exist (it comes with the postgresql package)"
    chown postgres: "$dir" "$sock"
  fi
  chmod 700 "$sock"
  [[ -f "$data/PG_VERSION" ]] && return 0
  local ilog="$LOG_DIR/postgres-initdb.log"
  log "postgres: initdb in $data (log: $ilog)"
  : >"$ilog"; is_root && chown postgres: "$ilog"
  as_pg "$PG_BIN/initdb" -D "$data" -U postgres -E UTF8 --no-locale \
      --auth-local=trust --auth-host=trust >>"$ilog" 2>&1 \
    || die_log "initdb failed; log: $ilog" "$ilog"
  cat >>"$data/postgresql.conf" <<'EOF'

# ---- clarion local dev (deploy/local/infra.sh); port, socket dir and
# ---- listen_addresses are passed on the pg_ctl command line
synchronous_commit = off
max_connections = 300
logging_collector = off
log_min_messages = warning
EOF
}

pg_up() {
  pg_install
  local data sock plog="$LOG_DIR/postgres.log"
  data="$(pg_data)"; sock="$(pg_sock)"
  if pg_running; then
    local running_port
    running_port="$(sed -n 4p "$data/postmaster.pid" 2>/dev/null || true)"
    [[ "$running_port" == "$PG_PORT" ]] \
      || die "postgres is already running ($data) on port ${running_port:-?}, not $PG_PORT; run '$0 down' first to change CLARION_PG_PORT"
    log "postgres: already running ($data)"
  else
    port_open "$PG_PORT" && die "postgres: port 127.0.0.1:$PG_PORT is already in use by another process (not started by this script); set CLARION_PG_PORT or stop it"
    pg_initdb
    touch "$plog"; is_root && chown postgres: "$plog"
    local logto=(-l "$plog") ctl_out="$LOG_DIR/postgres-ctl.log"
    if is_root && ! runuser -u postgres -- test -w "$plog" 2>/dev/null; then
      # The `postgres` user cannot reach the log dir (the /var/tmp case of pg_dir), so
      # it cannot open -l itself: the server writes to the file this shell opens.
      logto=(); ctl_out="$plog"
    fi
    log "postgres: starting $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (log: $plog)"
    printf '\n==== %s start ====\n' "$(date -Is)" >>"$plog"
    as_pg "$PG_BIN/pg_ctl" start -D "$data" "${logto[@]}" -w -t "$READY_TIMEOUT" \
        -o "-p $PG_PORT -k $sock -c listen_addresses=127.0.0.1 -c max_connections=$PG_MAX_CONNECTIONS" >>"$ctl_out" 2>&1 8>&- 9>&- \
      || die_log "postgres failed to start; logs: $plog $LOG_DIR/postgres-ctl.log" "$plog" "$LOG_DIR/postgres-ctl.log"
  fi
  local psql=("$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tA)
  if [[ "$("${psql[@]}" -c "select 1 from pg_database where datname = 'ferretdb'" 2>>"$LOG_DIR/postgres-ctl.log")" != 1 ]]; then
    "${psql[@]}" -c "create database ferretdb" >>"$LOG_DIR/postgres-ctl.log" 2>&1 \
      || die_log "could not create database ferretdb on 127.0.0.1:$PG_PORT" "$LOG_DIR/postgres-ctl.log" "$plog"
    log "postgres: created database ferretdb"
  fi
  pg_gin_twins
  log "postgres: ready on 127.0.0.1:$PG_PORT"
}

# GIN twins of FerretDB's indexes, so that its `_jsonb->'f' @> v` filters use an index
# (ferretdb-gin.sql says why). CLARION_FERRETDB_GIN=false removes the trigger (existing
# twins stay), to measure without it on a fresh data folder.
pg_gin_twins() {
  local psql=("$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d ferretdb -v ON_ERROR_STOP=1)
  local glog="$LOG_DIR/postgres-ctl.log"
  if [[ "$FERRETDB_GIN" == "false" ]]; then
    "${psql[@]}" -c "DROP EVENT TRIGGER IF EXISTS clarion_gin_twins" >>"$glog" 2>&1 \
      || die_log "could not drop the GIN twins trigger" "$glog"
    log "postgres: GIN twins of FerretDB indexes off (CLARION_FERRETDB_GIN=false)"
    return 0
  fi
  "${psql[@]}" -f "$SCRIPT_DIR/ferretdb-gin.sql" >>"$glog" 2>&1 \
    || die_log "could not install the GIN twins of FerretDB indexes ($SCRIPT_DIR/ferretdb-gin.sql)" "$glog"
  log "postgres: GIN twins of FerretDB indexes installed"
}

pg_down() {
  if ! pg_running; then
    log "postgres: not running"
    return 0
  fi
  log "postgres: stopping (pg_ctl stop -m fast)"
  as_pg "$PG_BIN/pg_ctl" stop -D "$(pg_data)" -m fast -w -t "$STOP_TIMEOUT" >>"$LOG_DIR/postgres-ctl.log" 2>&1 \
    || die_log "pg_ctl stop failed" "$LOG_DIR/postgres-ctl.log" "$LOG_DIR/postgres.log"
  log "postgres: stopped"
}

# pg_processes: pids of the cluster's processes (the postmaster and every child: they
# all run in the data dir). Each child is in a process group of its own, and
# backends can outlive a killed postmaster, so they are found by working directory.
pg_processes() {
  local data p
  data="$(cd "$(pg_data)" 2>/dev/null && pwd -P)" || return 0
  for p in /proc/[0-9]*; do
    [[ "$(cat "$p/comm" 2>/dev/null)" == postgres ]] || continue
    [[ "$(readlink "$p/cwd" 2>/dev/null)" == "$data" ]] && printf '%s\n' "${p#/proc/}"
  done
  return 0
}

# pg_restart: stop the cluster whatever its state (answering, SIGSTOPped, postmaster
# killed with backends left), then pg_up.
pg_restart() {
  pg_install
  local pids i postmaster
  mapfile -t pids < <(pg_processes)
  if (( ${#pids[@]} )); then
    log "postgres: stopping for a restart (pids ${pids[*]})"
    kill -CONT "${pids[@]}" 2>/dev/null || true
    # pg_ctl signals the pid of postmaster.pid: only when that is one of ours (alive)
    postmaster="$(sed -n 1p "$(pg_data)/postmaster.pid" 2>/dev/null || true)"
    if [[ " ${pids[*]} " != *" $postmaster "* ]] \
       || ! as_pg "$PG_BIN/pg_ctl" stop -D "$(pg_data)" -m fast -w -t "$STOP_TIMEOUT" >>"$LOG_DIR/postgres-ctl.log" 2>&1; then
      mapfile -t pids < <(pg_processes)
      if (( ${#pids[@]} )); then
        log "postgres: no clean stop (postmaster gone or not stopping within ${STOP_TIMEOUT}s), sending SIGKILL to ${pids[*]}"
        kill -KILL "${pids[@]}" 2>/dev/null || true
      fi
    fi
    for ((i = 0; i < 50; i++)); do
      mapfile -t pids < <(pg_processes)
      (( ${#pids[@]} )) || break
      sleep 0.1
    done
    (( ${#pids[@]} == 0 )) || die "postgres: processes ${pids[*]} still alive after SIGKILL"
    # none of the cluster's processes is left, so its lock file is stale
    rm -f "$(pg_data)/postmaster.pid"
    log "postgres: stopped"
  else
    log "postgres: not running"
  fi
  pg_up
}

# ------------------------------------------------------------------ ferretdb
ferret_install() {
  [[ -x "$FERRET_BIN" ]] && return 0
  lock_cache
  [[ -x "$FERRET_BIN" ]] && return 0
  need_cmd go "needed once to build FerretDB $FERRETDB_VERSION from the Go module proxy"
  local ilog="$LOG_DIR/install-ferretdb.log" build dir
  mkdir -p "$CACHE_DIR/ferretdb"
  build="$(mktemp -d "$CACHE_DIR/ferretdb/build.XXXXXX")"
  log "ferretdb: building $FERRETDB_VERSION with go (takes 1-3 min once; log: $ilog)"
  {
    # `go install ...@version` builds a binary that panics at start (the release
    # process generates build/version/version.txt), so: download the module,
    # copy it, add version.txt, build.
    dir="$(cd "$build" && GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" \
      | "$PYTHON_BIN" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')" &&
    cp -r "$dir" "$build/src" && chmod -R u+w "$build/src" &&
    echo "$FERRETDB_VERSION" >"$build/src/build/version/version.txt" &&
    (cd "$build/src" && GOFLAGS=-buildvcs=false go build -trimpath -o "$build/ferretdb" ./cmd/ferretdb) &&
    "$build/ferretdb" --version
  } >"$ilog" 2>&1 || { rm -rf "$build"; die_log "building FerretDB $FERRETDB_VERSION failed; log: $ilog" "$ilog"; }
  mv "$build/ferretdb" "$FERRET_BIN"
  rm -rf "$build"
  log "ferretdb: binary cached at $FERRET_BIN"
}

ferret_pid() { pid_alive ferretdb "--state-dir=$FERRET_DIR"; }

ferret_up() {
  ferret_install
  local pid flog="$LOG_DIR/ferretdb.log"
  if pid="$(ferret_pid)"; then
    local cmdline
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
    [[ "$cmdline" == *"--listen-addr=127.0.0.1:$MONGO_PORT "* && "$cmdline" == *"@127.0.0.1:$PG_PORT/"* ]] \
      || die "ferretdb is already running (pid $pid) with other ports ($cmdline); run '$0 down' first to change CLARION_MONGO_PORT / CLARION_PG_PORT"
    log "ferretdb: already running (pid $pid)"
  else
    port_open "$MONGO_PORT" && die "ferretdb: port 127.0.0.1:$MONGO_PORT is already in use by another process (not started by this script); set CLARION_MONGO_PORT or stop it"
    mkdir -p "$FERRET_DIR"
    log "ferretdb: starting $FERRETDB_VERSION on 127.0.0.1:$MONGO_PORT (log: $flog)"
    printf '\n==== %s start ====\n' "$(date -Is)" >>"$flog"
    (
      cd "$FERRET_DIR"
      exec setsid "$FERRET_BIN" \
        --handler=postgresql \
        --postgresql-url="postgres://postgres@127.0.0.1:$PG_PORT/ferretdb?pool_max_conns=$FERRETDB_PG_POOL" \
        --listen-addr="127.0.0.1:$MONGO_PORT" \
        --state-dir="$FERRET_DIR" \
        --debug-addr=- \
        --telemetry=disable \
        --log-level="$FERRETDB_LOG_LEVEL"
    ) </dev/null >>"$flog" 2>&1 8>&- 9>&- &
    pid=$!
    echo "$pid" >"$PID_DIR/ferretdb.pid"
  fi
  # Ready when a read reaching PostgreSQL answers (FerretDB answers hello by itself).
  wait_ready ferretdb "$pid" "$flog" "$LOG_DIR/postgres.log" -- \
    "${PROBE[@]}" ferretdb "127.0.0.1:$MONGO_PORT"
  log "ferretdb: ready on 127.0.0.1:$MONGO_PORT"
}

# ------------------------------------------------------------------ supervisor
# python -m clarion_devtools.supervise: checks each component this script started
# with a real query and runs `restart NAME` after CLARION_SUPERVISE_FAILURES failed
# checks in a row. One per data dir, in a session of its own (setsid), so `down`
# stops it with everything it runs (a restart in progress included); the servers a
# restart starts have sessions of their own and survive that.
SUPERVISOR_MARKER="clarion_devtools.supervise"
supervisor_pid() { pid_alive supervisor "$SUPERVISOR_MARKER"; }
supervise_enabled() { [[ "${CLARION_SUPERVISE:-1}" != 0 ]]; }

supervisor_start() {
  local pid slog="$LOG_DIR/supervisor.log"
  if ! supervise_enabled; then
    if pid="$(supervisor_pid)"; then supervisor_stop; fi
    log "supervisor: not started (CLARION_SUPERVISE=0)"
    return 0
  fi
  if ! want_kafka && ! want_mongo; then
    log "supervisor: not started (nothing here to supervise: KAFKA_BOOTSTRAP_SERVERS and MONGODB_URL are set)"
    return 0
  fi
  if pid="$(supervisor_pid)"; then
    log "supervisor: already running (pid $pid)"
    return 0
  fi
  local args=(--infra-script "$SCRIPT_DIR/infra.sh" --data-dir "$DATA_DIR" --pid-file "$PID_DIR/supervisor.pid"
    --kafka "127.0.0.1:$KAFKA_PORT" --ferretdb "127.0.0.1:$MONGO_PORT")
  if want_mongo; then args+=(--postgres "127.0.0.1:$PG_PORT" --psql "$PG_BIN/psql"); fi
  log "supervisor: starting (log: $slog)"
  printf '\n==== %s start ====\n' "$(date -Is)" >>"$slog"
  (
    cd "$DATA_DIR"
    # what `restart` must see as this run did, whatever the caller's environment
    export CLARION_DATA_DIR="$DATA_DIR" CLARION_CACHE_DIR="$CACHE_DIR" \
      CLARION_KAFKA_PORT="$KAFKA_PORT" CLARION_KAFKA_CONTROLLER_PORT="$KAFKA_CONTROLLER_PORT" \
      CLARION_PG_PORT="$PG_PORT" CLARION_MONGO_PORT="$MONGO_PORT"
    exec setsid "$VENV_PYTHON" -m clarion_devtools.supervise "${args[@]}"
  ) </dev/null >>"$slog" 2>&1 8>&- 9>&- &
  echo "$!" >"$PID_DIR/supervisor.pid"
}

# supervisor_stop [quiet]: remove its pid file (it exits when it notices, and a
# restart it asked for and that waits for the lock is skipped), then SIGTERM its
# process group, SIGKILL after 5 s.
supervisor_stop() {
  local pid i
  if ! pid="$(supervisor_pid)"; then
    rm -f "$PID_DIR/supervisor.pid"
    [[ "${1:-}" == quiet ]] || log "supervisor: not running"
    return 0
  fi
  log "supervisor: stopping pid $pid and its process group"
  rm -f "$PID_DIR/supervisor.pid"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 25; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  log "supervisor: stopped"
}

# restart_wanted: false when the supervisor that asked for this restart (its pid in
# CLARION_SUPERVISOR_PID) was stopped while the restart waited for the lock: `down`
# ran, and must not be undone.
restart_wanted() {
  [[ -z "${CLARION_SUPERVISOR_PID:-}" ]] && return 0
  [[ "$(cat "$PID_DIR/supervisor.pid" 2>/dev/null)" == "$CLARION_SUPERVISOR_PID" ]]
}

# ------------------------------------------------------------------ commands
# single-quoted so that both `eval` and simple parsers (strip the quotes) work
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
print_env() {
  printf 'export KAFKA_BOOTSTRAP_SERVERS=%s\n' "$(shq "${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}")"
  printf 'export MONGODB_URL=%s\n' "$(shq "${MONGODB_URL:-mongodb://127.0.0.1:$MONGO_PORT/}")"
}

cmd_install() {
  ensure_dirs
  need_cmd "$PYTHON_BIN" "used to build FerretDB"
  if want_kafka; then kafka_install; log "kafka: installed ($(kafka_version))"; else log "kafka: skipped (KAFKA_BOOTSTRAP_SERVERS is set)"; fi
  if want_mongo; then
    pg_install; log "postgres: installed ($PG_BIN)"
    ferret_install; log "ferretdb: installed ($FERRET_BIN)"
  else
    log "postgres/ferretdb: skipped (MONGODB_URL is set)"
  fi
}

cmd_up() {
  ensure_dirs
  lock_data
  need_cmd "$PYTHON_BIN" "used to format Kafka's storage"
  if want_kafka || want_mongo; then need_venv; fi
  local t0; t0="$(date +%s%N)"
  # Kafka boots in the background (JVM start is the slowest part) while
  # PostgreSQL and FerretDB come up.
  if want_kafka; then kafka_start; else log "kafka: not started (KAFKA_BOOTSTRAP_SERVERS is set: $KAFKA_BOOTSTRAP_SERVERS)"; fi
  if want_mongo; then pg_up; ferret_up; else log "postgres/ferretdb: not started (MONGODB_URL is set: $MONGODB_URL)"; fi
  if want_kafka; then kafka_wait; fi
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  log "all ready in $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s; data: $DATA_DIR, logs: $LOG_DIR"
  supervisor_start
  print_env
}

cmd_restart() {
  local what="${1:-}"
  case "$what" in kafka | postgres | ferretdb) ;; *) usage ;; esac
  [[ -d "$DATA_DIR" ]] || die "restart $what: $DATA_DIR does not exist (run '$0 up')"
  ensure_dirs
  lock_data
  if ! restart_wanted; then
    log "restart $what: skipped, the supervisor that asked for it (pid $CLARION_SUPERVISOR_PID) was stopped"
    return 3  # RESTART_SKIPPED in clarion_devtools.supervise
  fi
  need_venv
  case "$what" in
    kafka)
      want_kafka || die "restart kafka: KAFKA_BOOTSTRAP_SERVERS is set, Kafka is not this script's"
      stop_pid kafka "$KAFKA_DIR/server.properties"
      kafka_start
      kafka_wait
      ;;
    postgres)
      want_mongo || die "restart postgres: MONGODB_URL is set, PostgreSQL is not this script's"
      pg_restart
      ;;
    ferretdb)
      want_mongo || die "restart ferretdb: MONGODB_URL is set, FerretDB is not this script's"
      stop_pid ferretdb "--state-dir=$FERRET_DIR"
      ferret_up
      ;;
  esac
}

cmd_down() {
  [[ -d "$DATA_DIR" ]] || { log "nothing to stop ($DATA_DIR does not exist)"; return 0; }
  mkdir -p "$PID_DIR" "$LOG_DIR"
  # The supervisor first, so that it restarts nothing of what follows; again once
  # the lock is held, in case a concurrent `up` started one meanwhile.
  supervisor_stop
  lock_data
  supervisor_stop quiet
  stop_pid ferretdb "--state-dir=$FERRET_DIR"
  stop_pid kafka "$KAFKA_DIR/server.properties"
  pg_down
}

status_line() { printf '%-10s %-8s %s\n' "$1" "$2" "$3"; }

cmd_status() {
  local pid rc=0
  if want_kafka || want_mongo; then need_venv; fi
  if ! want_kafka; then
    status_line kafka external "$KAFKA_BOOTSTRAP_SERVERS"
  elif pid="$(kafka_pid)"; then
    if "${PROBE[@]}" kafka "127.0.0.1:$KAFKA_PORT" 2>/dev/null; then
      status_line kafka ready "127.0.0.1:$KAFKA_PORT pid=$pid version=$(kafka_version)"
    else status_line kafka starting "127.0.0.1:$KAFKA_PORT pid=$pid (not answering)"; rc=1; fi
  else status_line kafka stopped "(port $KAFKA_PORT)"; rc=1; fi
  if ! want_mongo; then
    status_line postgres external "-"
    status_line ferretdb external "$MONGODB_URL"
  else
    if ! pg_running; then status_line postgres stopped "(port $PG_PORT)"; rc=1
    elif "${PROBE[@]}" postgres "127.0.0.1:$PG_PORT" "$PG_BIN/psql" 2>/dev/null; then
      status_line postgres ready "127.0.0.1:$PG_PORT data=$(pg_data)"
    else status_line postgres starting "127.0.0.1:$PG_PORT (not answering select 1)"; rc=1; fi
    if pid="$(ferret_pid)"; then
      if "${PROBE[@]}" ferretdb "127.0.0.1:$MONGO_PORT" 2>/dev/null; then
        status_line ferretdb ready "127.0.0.1:$MONGO_PORT pid=$pid version=$FERRETDB_VERSION"
      else status_line ferretdb starting "127.0.0.1:$MONGO_PORT pid=$pid (not answering)"; rc=1; fi
    else status_line ferretdb stopped "(port $MONGO_PORT)"; rc=1; fi
  fi
  # not part of the exit status: it says whether the infrastructure answers
  if pid="$(supervisor_pid)"; then
    status_line supervisor running "pid=$pid log=$LOG_DIR/supervisor.log"
  elif ! supervise_enabled; then status_line supervisor disabled "(CLARION_SUPERVISE=0)"
  elif ! want_kafka && ! want_mongo; then status_line supervisor - "(nothing to supervise)"
  else status_line supervisor stopped "('$0 up' starts it)"; fi
  printf 'data: %s\nlogs: %s\ncache: %s\n' "$DATA_DIR" "$LOG_DIR" "$CACHE_DIR"
  return "$rc"
}

cmd_clean() {
  cmd_down
  local pgd; pgd="$(pg_dir)"
  [[ -n "$DATA_DIR" && "$DATA_DIR" != "/" ]] || die "refusing to delete data dir '$DATA_DIR'"
  log "deleting $DATA_DIR"
  rm -rf -- "$DATA_DIR"
  [[ "$pgd" == /var/tmp/clarion-pg-* ]] && rm -rf -- "$pgd"
  return 0
}

usage() {
  sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  restart) cmd_restart "${2:-}" ;;
  status) cmd_status ;;
  env) print_env ;;
  clean) cmd_clean ;;
  *) usage ;;
esac
