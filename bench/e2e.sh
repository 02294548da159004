#!/usr/bin/env bash
# End-to-end benchmark (issue 5): parleyd against parley-load over loopback, one scenario at a
# time, each against a freshly started parleyd pinned to core 0 (taskset -c 0) with parley-load
# pinned to core 1, so the two never share a core with each other. Scenarios:
#   echo      100 and 1,000 connections x 20 B and 1 KiB messages x pipeline 16 and pipeline 1
#             (closed loop: throughput in echoes/s, latency = round trip)
#   broadcast 1,000 subscribers at 1,000 msg/s and 10,000 subscribers at 100 msg/s (one room,
#             one publisher, open loop; 1M deliveries/s offered either way; throughput in
#             deliveries/s, latency = publish to receipt, measured once every subscriber joined),
#             then both again closed loop (4 publishers, pipeline 64: the most deliveries/s)
#   chat      1,000 users in 50 rooms, 3 rooms each, 1 msg/s per user, 20% idle (open loop;
#             deliveries/s, latency = publish to receipt, deliveries checked against the acks)
#   connect   handshakes/s with 16 concurrent connectors, with a plain TCP close and with a
#             close handshake (--close); latency = connect() to a verified 101
# and writes results/<date-time>/: results.md (a markdown table: scenario, throughput, p50, p99,
# p99.9, errors, the server's CPU as % of a core over the measurement and per operation, from
# /proc/PID/stat), throughput.png and latency.png (gnuplot), and each run's JSON and log.
#
# parleyd runs with --rate-limit 0 (its default of 20 chat messages/s per connection would
# refuse the publisher) and --max-room-members 0 (its default cap of 10,000 members would refuse
# the 10,000-subscriber room: with the publisher it holds 10,001), and --store none (memory only;
# E2E_STORE=/path/file.db runs every scenario against a SQLite store there instead, removed
# before each scenario). The machine's load average is
# recorded at the start and the end: on a shared machine, the CPU per operation is the figure
# least disturbed by others, throughput and latency the most.
#
# usage: bash bench/e2e.sh [--url ws://HOST:PORT/echo] [--chat-url ws://HOST:PORT/chat]
#                          [--server-pid PID] [--duration S] [--out DIR]
#   --url URL         benchmark another server's echo endpoint instead of starting parleyd
#                     (echo and connect scenarios); broadcast is skipped unless --chat-url names
#                     an endpoint that speaks parley's chat protocol (docs/protocol.md)
#   --chat-url URL    with --url: the other server's chat endpoint, for the broadcast scenarios
#   --server-pid PID  with --url: the other server's process, for its CPU figures
#   --duration S      measured seconds per scenario (default 4; the whole run stays under ~5 min)
#   --out DIR         results directory (default results/<date-time>)
# The binaries come from $PARLEY_BUILD_DIR (default build/): run `make` first. gnuplot is
# installed (apt-get install gnuplot-nox) when missing; without it the plots are skipped.
# Exit status: 0 when every scenario ran without errors, 1 otherwise, 2 on bad usage.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/parleyd_port.sh
BUILD=${PARLEY_BUILD_DIR:-build}

die() { echo "e2e: $*" >&2; exit 2; }

URL="" CHAT_URL="" SERVER_PID_ARG="" DURATION=4 OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --url) URL=${2:?}; shift 2 ;;
    --chat-url) CHAT_URL=${2:?}; shift 2 ;;
    --server-pid) SERVER_PID_ARG=${2:?}; shift 2 ;;
    --duration) DURATION=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ "$DURATION" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--duration must be a number of seconds"
[ -z "$CHAT_URL" ] || [ -n "$URL" ] || die "--chat-url goes with --url"
[ -z "$SERVER_PID_ARG" ] || [ -n "$URL" ] || die "--server-pid goes with --url"
LOAD=$BUILD/parley-load
PARLEYD=$BUILD/parleyd
[ -x "$LOAD" ] || die "$LOAD not found: run make first (or set PARLEY_BUILD_DIR)"
[ -n "$URL" ] || [ -x "$PARLEYD" ] || die "$PARLEYD not found: run make first (or set PARLEY_BUILD_DIR)"

OUT=${OUT:-results/$(date +%Y-%m-%d-%H%M%S)}
mkdir -p "$OUT" || die "cannot create $OUT"

# Pin the server and the load generator to different cores when there are two.
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_PIN=(taskset -c 0) LOAD_PIN=(taskset -c 1)
else
  SERVER_PIN=() LOAD_PIN=()
  echo "e2e: fewer than two cores (or no taskset): server and load generator are not pinned" >&2
fi

if ! command -v gnuplot >/dev/null; then
  echo "e2e: installing gnuplot-nox for the plots" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gnuplot-nox >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gnuplot-nox >/dev/null 2>&1; } ||
    echo "e2e: could not install gnuplot: no plots" >&2
fi

SERVER_PID=""      # the `timeout` wrapping parleyd
SERVER_CPU_PID=""  # parleyd itself
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null  # timeout passes it on to parleyd
  for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$SERVER_PID" 2>/dev/null; then  # still there after 5 s: parleyd too
    [ -z "$SERVER_CPU_PID" ] || kill -KILL "$SERVER_CPU_PID" 2>/dev/null
    kill -KILL "$SERVER_PID" 2>/dev/null
  fi
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID="" SERVER_CPU_PID=""
}
trap 'stop_server' EXIT
trap 'exit 130' INT TERM

# Starts parleyd on a free port; sets SERVER_PID and PORT.
start_server() {
  local log=$1
  # A fresh store per scenario, like a fresh process.
  if [ -n "${E2E_STORE:-}" ]; then rm -f "$E2E_STORE" "$E2E_STORE-wal" "$E2E_STORE-shm"; fi
  # Bounded like everything else: no scenario keeps a server longer than this.
  timeout -s KILL 300 "${SERVER_PIN[@]}" "$PARLEYD" --listen 127.0.0.1:0 --store "${E2E_STORE:-none}" --rate-limit 0 --max-room-members 0 \
    --drain-timeout 0 >"$log" 2>&1 &
  SERVER_PID=$!
  PORT=$(parleyd_port "$log" "$SERVER_PID") || true
  [ -n "$PORT" ] || { echo "e2e: parleyd did not start: $(tail -3 "$log")" >&2; return 1; }
  # `timeout` forks: the server is its child. Sample that one's CPU, and stop it through timeout.
  SERVER_CPU_PID=$(pgrep -P "$SERVER_PID" -n 2>/dev/null || true)
  [ -n "$SERVER_CPU_PID" ] || SERVER_CPU_PID=$SERVER_PID
}

# The first number after "key": in a parley-load JSON file ("" when absent).
json() { grep -o "\"$2\": [-0-9.e+]*" "$1" 2>/dev/null | head -1 | sed 's/.*: //'; }

# Latency in microseconds, human-sized.
human_us() {
  awk -v v="$1" 'BEGIN { if (v == "") print "-"; else if (v >= 1000000) printf "%.2f s", v / 1e6;
                         else if (v >= 1000) printf "%.2f ms", v / 1e3; else printf "%.0f us", v }'
}
# 1234567.8 -> 1,234,568
grouped() {
  awk -v v="$1" 'BEGIN { s = sprintf("%.0f", v); n = length(s); out = "";
                         for (i = 1; i <= n; i++) { out = out substr(s, i, 1); if (i < n && (n - i) % 3 == 0) out = out "," }
                         print out }'
}

STATUS=0
ROWS=()   # markdown rows
WHOLE=()  # server CPU seconds over each whole scenario
: >"$OUT/results.dat"

# run_scenario NAME KIND PATH PARLEY-LOAD-ARGS...   (KIND: echo, broadcast or connect; chat
# reports as broadcast does)
run_scenario() {
  local name=$1 kind=$2 path=$3; shift 3
  local url pid_args=() json_file="$OUT/$name.json" log="$OUT/$name.log"
  if [ -n "$URL" ]; then
    if [ "$kind" = broadcast ]; then
      if [ -z "$CHAT_URL" ]; then
        echo "e2e: $name skipped: the other server's chat endpoint is unknown (--chat-url)"
        ROWS+=("| $name | skipped (no --chat-url) | | | | | | |")
        return
      fi
      url=$CHAT_URL
    else
      url=$URL
    fi
    [ -z "$SERVER_PID_ARG" ] || pid_args=(--server-pid "$SERVER_PID_ARG")
  else
    start_server "$OUT/$name.server.log" || { STATUS=1; ROWS+=("| $name | server did not start | | | | | | |"); return; }
    url="ws://127.0.0.1:$PORT$path"
    pid_args=(--server-pid "$SERVER_CPU_PID")
  fi
  echo "== $name: parley-load $* --url $url"
  local started=$SECONDS
  timeout -s KILL 200 "${LOAD_PIN[@]}" "$LOAD" "$@" --url "$url" "${pid_args[@]}" --quiet --json "$json_file" \
    >"$log" 2>&1
  local rc=$?
  if [ -z "$URL" ]; then
    # The server's CPU over the whole scenario (start-up, connections, joins, the measurement),
    # before the teardown: for broadcast, what the join storm cost next to the measurement.
    local ticks
    ticks=$(sed 's/.*) //' "/proc/$SERVER_CPU_PID/stat" 2>/dev/null | awk '{ print $12 + $13 }')
    [ -z "$ticks" ] || WHOLE+=("$name: $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }') s")
    stop_server
  fi
  sed 's/^/   /' "$log"
  [ $rc -eq 0 ] || STATUS=1
  if [ ! -s "$json_file" ]; then
    ROWS+=("| $name | failed (exit $rc, see $name.log) | | | | | | |")
    return
  fi
  local throughput unit ops latency_key=latency_us
  case "$kind" in
    echo) throughput=$(json "$json_file" messages_per_s) unit="echoes/s" ops=$(json "$json_file" messages_received) ;;
    broadcast) throughput=$(json "$json_file" deliveries_per_s) unit="deliveries/s" ops=$(json "$json_file" deliveries) ;;
    connect) throughput=$(json "$json_file" handshakes_per_s) unit="handshakes/s" ops=$(json "$json_file" cycles)
             latency_key=connect_latency_us ;;
  esac
  local lat p50 p99 p999
  lat=$(grep -o "\"$latency_key\": {[^}]*}" "$json_file")
  p50=$(grep -o '"p50": [0-9.]*' <<<"$lat" | sed 's/.*: //')
  p99=$(grep -o '"p99": [0-9.]*' <<<"$lat" | sed 's/.*: //')
  p999=$(grep -o '"p999": [0-9.]*' <<<"$lat" | sed 's/.*: //')
  local errors cpu_s cpu_window cpu_pct cpu_per_op="-" cpu_col="-"
  errors=$(json "$json_file" total)
  cpu_s=$(json "$json_file" server_cpu_s)
  cpu_window=$(json "$json_file" server_cpu_window_s)
  cpu_pct=$(json "$json_file" server_cpu_percent)
  if awk -v w="$cpu_window" 'BEGIN { exit !(w > 0) }'; then
    cpu_col="$cpu_pct %"
    cpu_per_op=$(awk -v c="$cpu_s" -v n="$ops" 'BEGIN { if (n > 0) printf "%.3f", c * 1e6 / n; else print "-" }')
  fi
  local extra=""
  if [ "$kind" = broadcast ]; then
    extra=" ($(grouped "$(json "$json_file" deliveries)") of $(grouped "$(json "$json_file" deliveries_expected)"), joined in $(json "$json_file" join_s) s)"
  fi
  ROWS+=("| $name | $(grouped "$throughput") $unit$extra | $(human_us "$p50") | $(human_us "$p99") | $(human_us "$p999") | $errors | $cpu_col | $cpu_per_op |")
  printf '%s %s %s %s %s\n' "$name" "${throughput:-0}" "${p50:-0}" "${p99:-0}" "${p999:-0}" >>"$OUT/results.dat"
  echo "   ($(( SECONDS - started )) s)"
}

LOAD_START=$(uptime)
RUN_START=$SECONDS
echo "e2e: results in $OUT; load average at the start: ${LOAD_START##*load average: }"

for conns in 100 1000; do
  for size in 20 1024; do
    label=$([ $size -eq 20 ] && echo 20B || echo 1KiB)
    for pipeline in 16 1; do
      run_scenario "echo-c$conns-$label-p$pipeline" echo /echo echo -c $conns --size $size --pipeline $pipeline \
        --warmup 1 --duration "$DURATION"
    done
  done
done
run_scenario broadcast-1k broadcast /chat broadcast -c 1000 --rate 1000 --warmup 1 --duration "$DURATION"
run_scenario broadcast-10k broadcast /chat broadcast -c 10000 -j 1 --rate 100 --warmup 1 --duration "$DURATION"
# Closed loop, deep pipeline: as many deliveries as the server and the one-core load generator
# manage; the server's CPU per delivery is the figure to compare.
run_scenario broadcast-1k-max broadcast /chat broadcast -c 1000 --publishers 4 --pipeline 64 --warmup 1 --duration "$DURATION"
run_scenario broadcast-10k-max broadcast /chat broadcast -c 10000 --publishers 4 --pipeline 64 --warmup 1 --duration "$DURATION"
run_scenario chat-1k broadcast /chat chat -c 1000 --rooms 50 --rooms-per-user 3 --user-rate 1 --idle-share 0.2 \
  --warmup 1 --duration "$DURATION"
run_scenario connect-tcp-close connect /echo connect -c 16 --duration "$DURATION"
run_scenario connect-close-frame connect /echo connect -c 16 --close --duration "$DURATION"

LOAD_END=$(uptime)
{
  echo "# parley end-to-end benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  if [ -n "$URL" ]; then
    echo "Server: $URL${CHAT_URL:+ and $CHAT_URL} (external)."
  else
    echo "Server: parleyd $("$PARLEYD" --version 2>/dev/null | head -1) (git $(git rev-parse --short HEAD 2>/dev/null || echo '?')), one process, pinned with \`${SERVER_PIN[*]:-no pinning}\`, \`--rate-limit 0 --max-room-members 0\`, a fresh process per scenario."
  fi
  echo "Load: parley-load pinned with \`${LOAD_PIN[*]:-no pinning}\`, $DURATION s measured per scenario."
  echo "Machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), Linux $(uname -r)."
  echo "Load average at the start: ${LOAD_START##*load average: }; at the end: ${LOAD_END##*load average: } (other work on the machine shares these cores)."
  echo
  echo "Throughput: echo = echoes/s (closed loop, --pipeline per connection); broadcast = deliveries/s (open loop, publish rate x subscribers offered); chat = deliveries/s (open loop, users talking in their rooms); connect = handshakes/s (16 concurrent connectors)."
  echo "Latency: echo round trip; broadcast publish to receipt; connect connect() to a verified 101. Server CPU: utime+stime over the measurement (/proc/PID/stat, 10 ms ticks), as % of one core and per echo / delivery / handshake."
  echo
  echo "| scenario | throughput | p50 | p99 | p99.9 | errors | server CPU | server CPU us/op |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  if [ ${#WHOLE[@]} -ne 0 ]; then
    echo
    echo "Server CPU over each whole scenario (start-up, connecting, joining, measurement; not the teardown):"
    printf -- '- %s\n' "${WHOLE[@]}"
  fi
  echo
  echo "Total time: $(( SECONDS - RUN_START )) s."
} >"$OUT/results.md"

if command -v gnuplot >/dev/null && [ -s "$OUT/results.dat" ]; then
  gnuplot <<EOF 2>"$OUT/gnuplot.log" || echo "e2e: gnuplot failed (see $OUT/gnuplot.log)" >&2
set terminal pngcairo size 1200,650 noenhanced font ",10"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.8
set xtics rotate by -35 nomirror
set grid ytics
set logscale y
set key top right
set output "$OUT/throughput.png"
set title "parley end-to-end: throughput (echoes/s, deliveries/s, handshakes/s; log scale)"
set ylabel "operations per second"
plot "$OUT/results.dat" using 2:xtic(1) title "throughput" lc rgb "#3a7bd5"
set output "$OUT/latency.png"
set title "parley end-to-end: latency percentiles (log scale)"
set ylabel "microseconds"
set style histogram clustered gap 1
plot "$OUT/results.dat" using 3:xtic(1) title "p50" lc rgb "#2ca02c", \
     "" using 4 title "p99" lc rgb "#ff7f0e", \
     "" using 5 title "p99.9" lc rgb "#d62728"
EOF
fi

echo
cat "$OUT/results.md"
echo
echo "e2e: wrote $OUT/results.md$( [ -s "$OUT/throughput.png" ] && echo ", throughput.png, latency.png")"
exit $STATUS
