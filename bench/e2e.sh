#!/usr/bin/env bash
# End-to-end benchmark (issue 5): parleyd against parley-load over loopback, one scenario at a
# time, each against a freshly started parleyd pinned to core 0 (taskset -c 0) with parley-load
# pinned to core 1, so the two never share a core with each other. Scenarios:
#   echo      100 and 1,000 connections x 20 B and 1 KiB messages x pipeline 16 and pipeline 1,
#             and 10,000 connections x 20 B and 1 KiB at pipeline 1 (closed loop: throughput in
#             echoes/s, latency = round trip)
#   broadcast 1,000 subscribers at 1,000 msg/s and 10,000 subscribers at 100 msg/s (one room,
#             one publisher, open loop; 1M deliveries/s offered either way; throughput in
#             deliveries/s, latency = publish to receipt, measured once every subscriber joined),
#             latency at fixed offered rates (issue 18): 1,000 and 10,000 subscribers at 50k and
#             200k deliveries/s offered (open loop), then 1,000 and 10,000 closed loop (4
#             publishers, pipeline 64: the most deliveries/s)
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
# before each scenario); E2E_PARLEYD_ARGS="--io-uring on" adds options to every parleyd (the
# results.md header records them). The machine's load average is
# recorded at the start and the end: on a shared machine, the CPU per operation is the figure
# least disturbed by others, throughput and latency the most.
#
# usage: bash bench/e2e.sh [--url ws://HOST:PORT/echo] [--chat-url ws://HOST:PORT/chat]
#                          [--server-pid PID] [--compare ws://HOST:PORT] [--compare-pid PID]
#                          [--compare-echo-path P] [--compare-chat-path P] [--quick]
#                          [--duration S] [--out DIR]
#   --url URL         benchmark another server's echo endpoint instead of starting parleyd
#                     (echo and connect scenarios); broadcast is skipped unless --chat-url names
#                     an endpoint that speaks parley's chat protocol (docs/protocol.md)
#   --chat-url URL    with --url: the other server's chat endpoint, for the broadcast scenarios
#   --server-pid PID  with --url: the other server's process (PID,PID,... for several), for its
#                     CPU figures
#   --compare URL     side by side: every scenario the other, already running server at URL
#                     (ws://HOST:PORT) can answer runs against a fresh parleyd and then against
#                     it, back to back: echo (URL + --compare-echo-path, default /echo), connect
#                     (the same path), broadcast (URL + --compare-chat-path, default /chat; the
#                     hello/join/msg/ack subset of docs/protocol.md parley-load speaks; "none"
#                     skips it). chat needs all of parley's protocol and runs on parleyd only.
#                     results.md gets a third table: both servers' figures and their ratios
#   --compare-pid PID the other server's process (PID,PID,... for several), for its CPU figures
#                     (pin it to core 0 yourself, e.g. `taskset -c 0 server`, as parleyd is)
#   --quick           a smoke run: 0.5 s per scenario, the 10,000-subscriber rows with 2,000
#   --duration S      measured seconds per scenario (default 4; the whole run takes ~5 min,
#                     twice that with --compare)
#   --out DIR         results directory (default results/<date-time>)
# The binaries come from $PARLEY_BUILD_DIR (default build/): run `make` first. gnuplot is
# installed (apt-get install gnuplot-nox) when missing; without it the plots are skipped.
# Exit status: 0 when every scenario ran without errors, 1 otherwise, 2 on bad usage.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${PARLEY_BUILD_DIR:-build}

die() { echo "e2e: $*" >&2; exit 2; }

URL="" CHAT_URL="" SERVER_PID_ARG="" DURATION=4 OUT="" QUICK=0
COMPARE="" COMPARE_PID="" COMPARE_ECHO=/echo COMPARE_CHAT=/chat
while [ $# -gt 0 ]; do
  case "$1" in
    --url) URL=${2:?}; shift 2 ;;
    --compare) COMPARE=${2:?}; shift 2 ;;
    --compare-pid) COMPARE_PID=${2:?}; shift 2 ;;
    --compare-echo-path) COMPARE_ECHO=${2:?}; shift 2 ;;
    --compare-chat-path) COMPARE_CHAT=${2:?}; shift 2 ;;
    --quick) QUICK=1 DURATION=0.5; shift ;;
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
[ -z "$COMPARE" ] || [ -z "$URL" ] || die "--compare and --url do not go together (--url runs the other server alone)"
[ -z "$COMPARE_PID" ] || [ -n "$COMPARE" ] || die "--compare-pid goes with --compare"
if [ -n "$COMPARE" ]; then
  [[ "$COMPARE" =~ ^ws://[^/]+$ ]] || die "--compare takes ws://HOST:PORT (the paths come from --compare-echo-path and --compare-chat-path)"
  [[ "$COMPARE_ECHO" == /* ]] || die "--compare-echo-path must start with /"
  [ "$COMPARE_CHAT" = none ] || [[ "$COMPARE_CHAT" == /* ]] || die "--compare-chat-path must start with / (or be none)"
fi
LOAD=$BUILD/parley-load
PARLEYD=$BUILD/parleyd
[ -x "$LOAD" ] || die "$LOAD not found: run make first (or set PARLEY_BUILD_DIR)"
[ -n "$URL" ] || [ -x "$PARLEYD" ] || die "$PARLEYD not found: run make first (or set PARLEY_BUILD_DIR)"

OUT=${OUT:-results/$(date +%Y-%m-%d-%H%M%S)}
mkdir -p "$OUT" || die "cannot create $OUT"

# Pin the server and the load generator to different cores when there are two.
pick_pinning one

if ! command -v gnuplot >/dev/null; then
  echo "e2e: installing gnuplot-nox for the plots" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gnuplot-nox >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gnuplot-nox >/dev/null 2>&1; } ||
    echo "e2e: could not install gnuplot: no plots" >&2
fi

trap 'stop_parleyd' EXIT
trap 'exit 130' INT TERM

# Starts parleyd on a free port; sets SERVER_PID, SERVER_CPU_PID and PORT (bench/lib.sh).
start_server() {
  # A fresh store per scenario, like a fresh process.
  if [ -n "${E2E_STORE:-}" ]; then rm -f "$E2E_STORE" "$E2E_STORE-wal" "$E2E_STORE-shm"; fi
  # shellcheck disable=SC2086  # E2E_PARLEYD_ARGS: words, e.g. "--io-uring on"
  start_parleyd "$1" --store "${E2E_STORE:-none}" --rate-limit 0 --max-room-members 0 --drain-timeout 0 \
    ${E2E_PARLEYD_ARGS:-}
}

STATUS=0
ROWS=()        # markdown rows: parleyd (or the --url server)
OTHER_ROWS=()  # --compare: the other server's
SIDE_ROWS=()   # --compare: both, with ratios
WHOLE=()       # server CPU seconds over each whole scenario
declare -A THR P50 P99 CPU_OP UNIT  # by "parleyd/NAME" and "other/NAME", for --compare
: >"$OUT/results.dat"

# measure TARGET NAME KIND URL PIDS PARLEY-LOAD-ARGS...: one parley-load run against URL
# (TARGET parleyd or other: which table the row goes to; KIND echo, broadcast, chat or connect;
# PIDS for --server-pid, may be empty). Writes NAME.json/.log (other: NAME.other.*).
measure() {
  local target=$1 name=$2 kind=$3 url=$4 pids=$5; shift 5
  local suffix="" pid_args=()
  [ "$target" = parleyd ] || suffix=.other
  [ -z "$pids" ] || pid_args=(--server-pid "$pids")
  local json_file="$OUT/$name$suffix.json" log="$OUT/$name$suffix.log" rows=ROWS
  [ -z "$COMPARE" ] || [ "$target" = parleyd ] || rows=OTHER_ROWS
  echo "== $name${suffix:+ (other server)}: parley-load $* --url $url"
  local started=$SECONDS
  timeout -s KILL 200 "${LOAD_PIN[@]}" "$LOAD" "$@" --url "$url" "${pid_args[@]}" --quiet --json "$json_file" \
    >"$log" 2>&1
  local rc=$?
  if [ "$target" = parleyd ] && [ -z "$URL" ]; then
    # The server's CPU over the whole scenario (start-up, connections, joins, the measurement),
    # before the teardown: for broadcast, what the join storm cost next to the measurement.
    local ticks
    ticks=$(cpu_ticks "$SERVER_CPU_PID")
    [ "$ticks" = 0 ] || WHOLE+=("$name: $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }') s")
    stop_parleyd
  fi
  sed 's/^/   /' "$log"
  [ $rc -eq 0 ] || STATUS=1
  if [ ! -s "$json_file" ]; then
    eval "$rows+=(\"| \$name | failed (exit \$rc, see \$(basename \"\$log\")) | | | | | | |\")"
    return
  fi
  local throughput unit ops latency_key=latency_us
  case "$kind" in
    echo) throughput=$(json "$json_file" messages_per_s) unit="echoes/s" ops=$(json "$json_file" messages_received) ;;
    broadcast|chat) throughput=$(json "$json_file" deliveries_per_s) unit="deliveries/s" ops=$(json "$json_file" deliveries) ;;
    connect) throughput=$(json "$json_file" handshakes_per_s) unit="handshakes/s" ops=$(json "$json_file" cycles)
             latency_key=connect_latency_us ;;
  esac
  local p50 p99 p999
  p50=$(json_latency "$json_file" "$latency_key" p50)
  p99=$(json_latency "$json_file" "$latency_key" p99)
  p999=$(json_latency "$json_file" "$latency_key" p999)
  local errors cpu_s cpu_window cpu_pct cpu_per_op="-" cpu_col="-"
  errors=$(json "$json_file" total)
  cpu_s=$(json "$json_file" server_cpu_s)
  cpu_window=$(json "$json_file" server_cpu_window_s)
  cpu_pct=$(json "$json_file" server_cpu_percent)
  if check "${cpu_window:-0} > 0"; then
    cpu_col="$cpu_pct %"
    cpu_per_op=$(awk -v c="$cpu_s" -v n="$ops" 'BEGIN { if (n > 0) printf "%.3f", c * 1e6 / n; else print "-" }')
  fi
  local extra=""
  if [ "$kind" = broadcast ] || [ "$kind" = chat ]; then
    extra=" ($(grouped "$(json "$json_file" deliveries)") of $(grouped "$(json "$json_file" deliveries_expected)"), joined in $(json "$json_file" join_s) s)"
  fi
  local row="| $name | $(grouped "$throughput") $unit$extra | $(human_us "$p50") | $(human_us "$p99") | $(human_us "$p999") | $errors | $cpu_col | $cpu_per_op |"
  eval "$rows+=(\"\$row\")"
  THR[$target/$name]=$throughput P50[$target/$name]=$p50 P99[$target/$name]=$p99 CPU_OP[$target/$name]=$cpu_per_op
  UNIT[$name]=$unit
  [ "$rows" = ROWS ] && printf '%s %s %s %s %s\n' "$name" "${throughput:-0}" "${p50:-0}" "${p99:-0}" "${p999:-0}" >>"$OUT/results.dat"
  echo "   ($(( SECONDS - started )) s)"
}

# A / B to two decimals ("-" when either is missing or B is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || a == "-" || b == "" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }

# run_scenario NAME KIND PATH PARLEY-LOAD-ARGS...: against a fresh parleyd on PATH (or, with
# --url, the other server alone); with --compare, then against the other server too when it can
# answer KIND (echo, connect, broadcast; chat only on parleyd).
run_scenario() {
  local name=$1 kind=$2 path=$3; shift 3
  if [ -n "$URL" ]; then
    local url=$URL
    if [ "$kind" = broadcast ] || [ "$kind" = chat ]; then
      if [ -z "$CHAT_URL" ]; then
        echo "e2e: $name skipped: the other server's chat endpoint is unknown (--chat-url)"
        ROWS+=("| $name | skipped (no --chat-url) | | | | | | |")
        return
      fi
      url=$CHAT_URL
    fi
    measure other "$name" "$kind" "$url" "$SERVER_PID_ARG" "$@"
    return
  fi
  if start_server "$OUT/$name.server.log"; then
    measure parleyd "$name" "$kind" "ws://127.0.0.1:$PORT$path" "$SERVER_CPU_PID" "$@"
  else
    STATUS=1
    ROWS+=("| $name | server did not start | | | | | | |")
  fi
  [ -n "$COMPARE" ] || return 0
  local other_path=$COMPARE_ECHO
  case "$kind" in
    chat) return 0 ;;
    broadcast) other_path=$COMPARE_CHAT ;;
  esac
  if [ "$other_path" = none ]; then
    OTHER_ROWS+=("| $name | skipped (--compare-chat-path none) | | | | | | |")
  else
    measure other "$name" "$kind" "$COMPARE$other_path" "$COMPARE_PID" "$@"
  fi
  local p=parleyd/$name o=other/$name
  SIDE_ROWS+=("| $name | $(grouped "${THR[$p]:-}") | $(grouped "${THR[$o]:-}") | $(ratio "${THR[$p]:-}" "${THR[$o]:-}") | $(human_us "${P50[$p]:-}") / $(human_us "${P99[$p]:-}") | $(human_us "${P50[$o]:-}") / $(human_us "${P99[$o]:-}") | $(ratio "${P99[$o]:-}" "${P99[$p]:-}") | ${CPU_OP[$p]:--} | ${CPU_OP[$o]:--} | $(ratio "${CPU_OP[$o]:-}" "${CPU_OP[$p]:-}") |")
}

# 10000 -> 10k, 2000 -> 2k, 500 -> 500.
k_label() { [ $(( $1 % 1000 )) -eq 0 ] && echo "$(( $1 / 1000 ))k" || echo "$1"; }

LOAD_START=$(uptime)
RUN_START=$SECONDS
echo "e2e: results in $OUT; load average at the start: ${LOAD_START##*load average: }"

BIG=10000 WARMUP=1
[ $QUICK -eq 0 ] || BIG=2000 WARMUP=0.2
for conns in 100 1000; do
  for size in 20 1024; do
    label=$([ $size -eq 20 ] && echo 20B || echo 1KiB)
    for pipeline in 16 1; do
      run_scenario "echo-c$conns-$label-p$pipeline" echo /echo echo -c $conns --size $size --pipeline $pipeline \
        --warmup $WARMUP --duration "$DURATION"
    done
  done
done
# One in flight at 10,000 connections too (issue 18's echo goal names 1,000 and 10,000).
for size in 20 1024; do
  label=$([ $size -eq 20 ] && echo 20B || echo 1KiB)
  run_scenario "echo-c$BIG-$label-p1" echo /echo echo -c $BIG --size $size --pipeline 1 --warmup $WARMUP \
    --duration "$DURATION"
done
# Open loop, 1M deliveries/s offered: past what one core delivers, so the throughput is the
# server's (and latency is queueing).
run_scenario broadcast-1k broadcast /chat broadcast -c 1000 --rate 1000 --warmup $WARMUP --duration "$DURATION"
run_scenario "broadcast-$(k_label $BIG)" broadcast /chat broadcast -c $BIG -j 1 --rate $(( 1000000 / BIG )) \
  --warmup $WARMUP --duration "$DURATION"
# Open loop at fixed offered rates (issue 18): latency where the server keeps up.
for subs in 1000 $BIG; do
  for offered in 50000 200000; do
    run_scenario "broadcast-$(k_label $subs)-at-$(k_label $offered)" broadcast /chat broadcast -c $subs \
      --rate $(( offered / subs )) --warmup $WARMUP --duration "$DURATION"
  done
done
# Closed loop, deep pipeline: as many deliveries as the server and the one-core load generator
# manage; the server's CPU per delivery is the figure to compare.
run_scenario broadcast-1k-max broadcast /chat broadcast -c 1000 --publishers 4 --pipeline 64 --warmup $WARMUP --duration "$DURATION"
run_scenario "broadcast-$(k_label $BIG)-max" broadcast /chat broadcast -c $BIG --publishers 4 --pipeline 64 \
  --warmup $WARMUP --duration "$DURATION"
run_scenario chat-1k chat /chat chat -c 1000 --rooms 50 --rooms-per-user 3 --user-rate 1 --idle-share 0.2 \
  --warmup $WARMUP --duration "$DURATION"
run_scenario connect-tcp-close connect /echo connect -c 16 --duration "$DURATION"
run_scenario connect-close-frame connect /echo connect -c 16 --close --duration "$DURATION"

LOAD_END=$(uptime)
{
  echo "# parley end-to-end benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  if [ -n "$URL" ]; then
    echo "Server: $URL${CHAT_URL:+ and $CHAT_URL} (external)."
  else
    echo "Server: $("$PARLEYD" --version 2>/dev/null | head -1) (git $(git rev-parse --short HEAD 2>/dev/null || echo '?')), one process, pinned with \`${SERVER_PIN[*]:-no pinning}\`, \`--rate-limit 0 --max-room-members 0${E2E_PARLEYD_ARGS:+ $E2E_PARLEYD_ARGS}\`, a fresh process per scenario.${COMPARE:+ Compared with the server at $COMPARE (already running, not restarted between scenarios${COMPARE_PID:+; its CPU from pid $COMPARE_PID}), each scenario right after the parleyd run.}"
  fi
  echo "Load: parley-load pinned with \`${LOAD_PIN[*]:-no pinning}\`, $DURATION s measured per scenario."
  echo "Machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), Linux $(uname -r)."
  echo "Load average at the start: ${LOAD_START##*load average: }; at the end: ${LOAD_END##*load average: } (other work on the machine shares these cores)."
  echo
  echo "Throughput: echo = echoes/s (closed loop, --pipeline per connection); broadcast = deliveries/s (open loop, publish rate x subscribers offered: 1M/s, or the rate in the name, -at-50k = 50,000/s; -max: closed loop, 4 publishers, pipeline 64); chat = deliveries/s (open loop, users talking in their rooms); connect = handshakes/s (16 concurrent connectors)."
  echo "Latency: echo round trip; broadcast publish to receipt; connect connect() to a verified 101. Server CPU: utime+stime over the measurement (/proc/PID/stat, 10 ms ticks), as % of one core and per echo / delivery / handshake."
  echo
  echo "| scenario | throughput | p50 | p99 | p99.9 | errors | server CPU | server CPU us/op |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  if [ -n "$COMPARE" ]; then
    echo
    echo "## The other server: $COMPARE"
    echo
    echo "| scenario | throughput | p50 | p99 | p99.9 | errors | server CPU | server CPU us/op |"
    echo "|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${OTHER_ROWS[@]}"
    echo
    echo "## Side by side"
    echo
    echo "Throughput ratio = parleyd / other (above 1: parleyd does more); p99 ratio and CPU ratio = other / parleyd (above 1: parleyd is faster / cheaper). CPU per operation only with --compare-pid."
    echo
    echo "| scenario | parleyd throughput | other throughput | ratio | parleyd p50 / p99 | other p50 / p99 | p99 ratio | parleyd CPU us/op | other CPU us/op | CPU ratio |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${SIDE_ROWS[@]}"
  fi
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
