# Sourced by the bench scripts (e2e.sh, cluster.sh, million.sh): starting and stopping parleyd and
# a private redis-server, CPU time from /proc, reading parley-load's JSON, formatting numbers.
# Needs bash 5 (EPOCHREALTIME). Every process started here runs under `timeout`, so a killed
# script leaves nothing running for long.
. "$(dirname "${BASH_SOURCE[0]}")/parleyd_port.sh"

# --- numbers and JSON ------------------------------------------------------------------------

# The first number after "key": in a parley-load JSON file ("" when absent).
json() { grep -o "\"$2\": [-0-9.e+]*" "$1" 2>/dev/null | head -1 | sed 's/.*: //'; }
# json_latency FILE OBJECT PERCENTILE: e.g. json_latency run.json latency_us p99 ("" when absent).
json_latency() {
  grep -o "\"$2\": {[^}]*}" "$1" 2>/dev/null | grep -o "\"$3\": [0-9.]*" | head -1 | sed 's/.*: //'
}
# json_list FILE KEY: the numbers of a flat JSON array, space-separated ("server_cpu_each_s").
json_list() { grep -o "\"$2\": \[[^]]*\]" "$1" 2>/dev/null | head -1 | sed 's/.*\[//; s/\]//; s/,/ /g'; }

# Latency in microseconds, human-sized ("-" when empty).
human_us() {
  awk -v v="$1" 'BEGIN { if (v == "") print "-"; else if (v >= 1000000) printf "%.2f s", v / 1e6;
                         else if (v >= 1000) printf "%.2f ms", v / 1e3; else printf "%.0f us", v }'
}
# 1234567.8 -> 1,234,568 ("-" when empty).
grouped() {
  awk -v v="$1" 'BEGIN { if (v == "") { print "-"; exit } s = sprintf("%.0f", v); n = length(s); out = "";
                         for (i = 1; i <= n; i++) { out = out substr(s, i, 1); if (i < n && (n - i) % 3 == 0) out = out "," }
                         print out }'
}
# Floating-point arithmetic and comparisons: calc '1.5 * 2' prints, check '3 > 2' is an exit status.
calc() { awk "BEGIN { print $* }"; }
check() { awk "BEGIN { exit !($*) }"; }
# sum_list "1 2.5 3" -> 6.5 (0 when empty).
sum_list() { awk -v l="$1" 'BEGIN { n = split(l, a, " "); s = 0; for (i = 1; i <= n; i++) s += a[i]; print s }'; }

# --- /proc -----------------------------------------------------------------------------------

# utime + stime (fields 14 and 15 of /proc/PID/stat) in clock ticks, summed over pids. Read with
# bash builtins: million.sh calls it next to ~100 busy processes.
cpu_ticks() {
  local sum=0 p line fields
  for p in "$@"; do
    { read -r line <"/proc/$p/stat"; } 2>/dev/null || continue
    read -ra fields <<<"${line##*) }"
    sum=$((sum + fields[11] + fields[12]))
  done
  echo $sum
}
# The pids of PID's children, space-separated (parleyd --workers: its workers).
child_pids() { pgrep -P "$1" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
# Open file descriptors of PID (sockets included).
fd_count() { local f n=0; for f in /proc/"$1"/fd/*; do n=$((n + 1)); done 2>/dev/null; echo $n; }

# stop_pids PID...: SIGTERM, up to 5 s for them to exit, then SIGKILL what is left; reaps our children.
stop_pids() {
  local p left
  [ $# -gt 0 ] || return 0
  for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 50); do
    left=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && left=1; done
    [ $left -eq 0 ] && break
    sleep 0.1
  done
  for p in "$@"; do kill -KILL "$p" 2>/dev/null; done
  for p in "$@"; do wait "$p" 2>/dev/null; done
  return 0
}

# --- core pinning ----------------------------------------------------------------------------

# pick_pinning [one|spread]: sets SERVER_PIN and LOAD_PIN (command prefixes). With two cores or
# more, the load generator gets the last core and the server core 0 (one) or every other core
# (spread: workers and Redis); else both are empty and a note goes to stderr.
pick_pinning() {
  local n; n=$(nproc)
  if [ "$n" -ge 2 ] && command -v taskset >/dev/null; then
    if [ "${1:-one}" = spread ] && [ "$n" -gt 2 ]; then SERVER_PIN=(taskset -c "0-$((n - 2))"); else SERVER_PIN=(taskset -c 0); fi
    LOAD_PIN=(taskset -c "$((n - 1))")
  else
    SERVER_PIN=() LOAD_PIN=()
    echo "bench: fewer than two cores (or no taskset): server and load generator are not pinned" >&2
  fi
}

# --- parleyd ---------------------------------------------------------------------------------

# start_parleyd LOG ARGS...: starts "${SERVER_PIN[@]}" parleyd --listen 127.0.0.1:0 ARGS under
# `timeout` (SERVER_LIFETIME seconds, default 300). Sets SERVER_PID (the timeout wrapper),
# SERVER_CPU_PID (parleyd; with --workers the supervisor), SERVER_PIDS (parleyd and its workers),
# PORT. Fails with a line on stderr when it does not announce its port within 10 s.
start_parleyd() {
  local log=$1; shift
  # TERM at the end of the lifetime (the supervisor passes it to its workers; a KILL would orphan
  # them), KILL 10 s later.
  timeout -k 10 "${SERVER_LIFETIME:-300}" "${SERVER_PIN[@]}" "${PARLEYD:-${BUILD:-build}/parleyd}" \
    --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  PORT=$(parleyd_port "$log" "$SERVER_PID") || true
  SERVER_CPU_PID="" SERVER_PIDS=()
  [ -n "$PORT" ] || { echo "bench: parleyd did not start: $(tail -3 "$log")" >&2; return 1; }
  # `timeout` forks: parleyd is its child; sample that one's CPU, and stop it through timeout.
  SERVER_CPU_PID=$(pgrep -P "$SERVER_PID" -n 2>/dev/null || true)
  [ -n "$SERVER_CPU_PID" ] || SERVER_CPU_PID=$SERVER_PID
  local workers; workers=$(child_pids "$SERVER_CPU_PID")
  read -ra SERVER_PIDS <<<"$SERVER_CPU_PID $workers"
}

# Stops what start_parleyd started (TERM through timeout, which passes it on; the supervisor
# passes it to its workers), KILLing every process of it still there after 5 s.
stop_parleyd() {
  [ -n "${SERVER_PID:-}" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  local p
  for p in "${SERVER_PIDS[@]}" "$SERVER_PID"; do kill -KILL "$p" 2>/dev/null; done
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID="" SERVER_CPU_PID="" SERVER_PIDS=()
}

# --- redis-server ----------------------------------------------------------------------------

# A free loopback TCP port (bound once and released; never 6379, the system Redis's).
free_port() {
  python3 -c '
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p != 6379: print(p); break'
}

# start_redis DIR: a private redis-server on 127.0.0.1 and a free port, its data and log in DIR,
# with the AOF on (appendonly yes, appendfsync $REDIS_FSYNC: default everysec, Redis's own default
# with AOF, see docs/redis.md; "always" as the tests run it), no RDB snapshots, under `timeout`
# (SERVER_LIFETIME). Sets REDIS_WRAPPER, REDIS_PID (redis-server itself), REDIS_PORT, REDIS_URL.
# Fails with a line on stderr when it does not answer PING within 10 s.
start_redis() {
  local dir=$1
  mkdir -p "$dir" || return 1
  REDIS_PORT=$(free_port) || { echo "bench: no free port for redis-server" >&2; return 1; }
  timeout -s KILL "${SERVER_LIFETIME:-300}" "${SERVER_PIN[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
    --save "" --appendonly yes --appendfsync "${REDIS_FSYNC:-everysec}" --dir "$dir" --daemonize no \
    --logfile "$dir/redis.log" --protected-mode no >/dev/null 2>&1 &
  REDIS_WRAPPER=$!
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  for _ in $(seq 100); do
    if [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
      REDIS_PID=$(pgrep -P "$REDIS_WRAPPER" -n 2>/dev/null || true)
      [ -n "$REDIS_PID" ] || REDIS_PID=$REDIS_WRAPPER
      return 0
    fi
    kill -0 "$REDIS_WRAPPER" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench: redis-server did not start: $(tail -3 "$dir/redis.log" 2>/dev/null)" >&2
  stop_redis
  return 1
}

# Stops what start_redis started.
stop_redis() {
  [ -n "${REDIS_WRAPPER:-}" ] || return 0
  stop_pids "$REDIS_WRAPPER" ${REDIS_PID:+"$REDIS_PID"}
  REDIS_WRAPPER="" REDIS_PID=""
}
