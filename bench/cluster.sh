#!/usr/bin/env bash
# One chat over Redis (issue 15), end to end on loopback: parleyd --workers W --redis URL (one
# port; SO_REUSEPORT spreads the connections over the workers, each a node of the chat) against
# a private redis-server (a free loopback port, never 6379; appendonly yes, appendfsync everysec
# unless REDIS_FSYNC=always; a fresh one per run), measured with parley-load:
#   a. cross-node fan-out: S subscribers in one room spread over the workers, closed loop (4
#      publishers, --pipeline 64) and open loop (--rate so that OFFERED deliveries/s are offered),
#      next to the same load on ONE parleyd without Redis (--store none). Deliveries/s,
#      publish-to-receipt p50/p99, and CPU per delivery over the measurement: parleyd (every
#      worker and the supervisor) and redis-server, from /proc/PID/stat (parley-load --server-pid
#      with the list). Targets (issue 15): p99 under 20 ms at 100k deliveries/s offered;
#      deliveries per total CPU-second (parleyd + Redis) at least half of the single process's.
#   b. many small rooms: parley-load chat -c U --rooms R --rooms-per-user 2 over the workers,
#      open loop at rising --rate until p99 passes the target, a delivery is lost or the acked
#      rate falls below 95% of the offered one (the knee); room messages/s sustained and Redis
#      CPU per message.
# Connections per worker (peak open fds over the run's start, sampled every 0.5 s) show that the
# subscribers really sat on every worker. Results (markdown tables with pass/fail) are printed
# and written to $OUT/results.md with every run's JSON and logs.
#
# usage: bash bench/cluster.sh [--quick] [--only fanout|rooms] [--workers W] [--subscribers S]
#                              [--offered D] [--users U] [--rooms R] [--rates "R1 R2 ..."]
#                              [--duration S] [--out DIR]
#   --quick          a small run to prove the script (about a minute): 500 subscribers, 10k
#                    deliveries/s offered, 400 users in 40 rooms at 100, 200, 400 msg/s, 2 s each
#   --only PART      only part a (fanout) or b (rooms)
#   --workers W      parleyd workers (default 4)
#   --subscribers S  part a's room size (default 10000)
#   --offered D      part a's open-loop deliveries/s offered (default 100000: --rate D / S)
#   --users U        part b's users (default 10000), in --rooms R rooms (default 1000), 2 each
#   --rates LIST     part b's offered msg/s, in order (default "1000 2000 5000 10000 20000 40000 80000")
#   --duration S     measured seconds per run (default 10)
#   --p99-ms MS      the latency target (default 20)
#   --out DIR        results directory (default results/cluster-<date-time>)
# Pinning: with two cores or more, parley-load gets the last core and parleyd + Redis the others
# (on 2 cores: all server processes share core 0, as the single process does in bench/e2e.sh).
# CPU-bound: run the full size on a quiet machine. The binaries come from $PARLEY_BUILD_DIR
# (default build/). Exit status: 0 when every run ran and lost no delivery (targets missed are
# reported in the tables, not in the status), 1 otherwise, 2 on bad usage.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${PARLEY_BUILD_DIR:-build}
LOAD=$BUILD/parley-load
PARLEYD=$BUILD/parleyd

die() { echo "cluster: $*" >&2; exit 2; }

ONLY="" WORKERS=4 SUBS=10000 OFFERED=100000 USERS=10000 ROOMS=1000 RATES="1000 2000 5000 10000 20000 40000 80000"
DURATION=10 WARMUP=1 P99_MS=20 OUT="" QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 SUBS=500 OFFERED=10000 USERS=400 ROOMS=40 RATES="100 200 400" DURATION=2 WARMUP=0.5; shift ;;
    --only) ONLY=${2:?}; shift 2 ;;
    --workers) WORKERS=${2:?}; shift 2 ;;
    --subscribers) SUBS=${2:?}; shift 2 ;;
    --offered) OFFERED=${2:?}; shift 2 ;;
    --users) USERS=${2:?}; shift 2 ;;
    --rooms) ROOMS=${2:?}; shift 2 ;;
    --rates) RATES=${2:?}; shift 2 ;;
    --duration) DURATION=${2:?}; shift 2 ;;
    --p99-ms) P99_MS=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case "$ONLY" in ""|fanout|rooms) ;; *) die "--only takes fanout or rooms" ;; esac
for v in "$WORKERS" "$SUBS" "$OFFERED" "$USERS" "$ROOMS" "$P99_MS"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "not a positive count: $v"
done
for v in $RATES; do [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "--rates: not a positive count: $v"; done
[[ "$DURATION" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--duration must be a number of seconds"
[ "$WORKERS" -le 15 ] || die "--workers: at most 15 (parley-load --server-pid takes 16 processes with Redis)"
[ "$SUBS" -le 18995 ] || die "--subscribers: at most 18995 (one parley-load process)"
[ "$USERS" -le 19000 ] || die "--users: at most 19000 (one parley-load process)"
[ -x "$LOAD" ] && [ -x "$PARLEYD" ] || die "$LOAD or $PARLEYD not found: run make first (or set PARLEY_BUILD_DIR)"
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || die "redis-server and redis-cli are needed (apt-get install redis-server)"
command -v python3 >/dev/null || die "python3 is needed (free ports)"

OUT=${OUT:-results/cluster-$(date +%Y-%m-%d-%H%M%S)}
mkdir -p "$OUT" || die "cannot create $OUT"
WORK=$(mktemp -d /tmp/parley-cluster.XXXXXX) || die "mktemp failed"
pick_pinning spread
SERVER_LIFETIME=600
# Per-IP caps off (every connection comes from 127.0.0.x); the rate limit and the room cap off
# (one publisher sends thousands of msg/s; a room holds 10,000 subscribers plus publishers).
COMMON=(--rate-limit 0 --max-room-members 0 --drain-timeout 0 --max-connections-per-ip 0 --max-handshakes-per-ip 0)
SAMPLER=""
cleanup() {
  [ -z "$SAMPLER" ] || { kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; }
  stop_parleyd
  stop_redis
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_node MODE LOG: MODE cluster = a fresh redis-server and parleyd --workers W --redis; single
# = one parleyd, --store none. Sets CPU_PIDS ("redis,parleyd,workers..." or "parleyd") and WORKER_PIDS.
start_node() {
  local mode=$1 log=$2
  if [ "$mode" = cluster ]; then
    start_redis "$WORK/redis-$(basename "$log" .log)" || return 1
    start_parleyd "$log" --workers "$WORKERS" --redis "$REDIS_URL" "${COMMON[@]}" || { stop_redis; return 1; }
    WORKER_PIDS=("${SERVER_PIDS[@]:1}")
    if [ ${#WORKER_PIDS[@]} -ne "$WORKERS" ]; then
      echo "cluster: found ${#WORKER_PIDS[@]} of $WORKERS workers" >&2
      stop_parleyd; stop_redis; return 1
    fi
    CPU_PIDS=$(IFS=,; echo "$REDIS_PID,${SERVER_PIDS[*]}")
  else
    start_parleyd "$log" --store none "${COMMON[@]}" || return 1
    WORKER_PIDS=("$SERVER_CPU_PID")
    CPU_PIDS=$SERVER_CPU_PID
  fi
}
stop_node() { stop_parleyd; stop_redis; }

# Samples the workers' open fds every 0.5 s into FILE (one line per sample, a column per worker)
# until stopped; the first line is the baseline (no clients yet).
sample_fds() { local p line=""; for p in "${WORKER_PIDS[@]}"; do line="$line $(fd_count "$p")"; done; echo "$line"; }
start_sampler() {
  local file=$1
  sample_fds >>"$file"  # the baseline, before any client connects
  ( while :; do sleep 0.5; sample_fds >>"$file"; done ) &
  SAMPLER=$!
}
stop_sampler() { [ -z "$SAMPLER" ] || { kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; SAMPLER=""; }; }
# Peak connections per worker over the baseline, "a/b/c/d", from a sampler's file.
per_worker() {
  awk 'NR == 1 { for (i = 1; i <= NF; i++) base[i] = $i; n = NF; next }
       { for (i = 1; i <= NF; i++) if ($i - base[i] > peak[i]) peak[i] = $i - base[i] }
       END { s = ""; for (i = 1; i <= n; i++) s = s (i > 1 ? "/" : "") (peak[i] + 0); print s }' "$1"
}
# Smallest of the "a/b/c" figures (0 when there are none: the sampler saw nothing).
least() { local m; m=$(tr '/' '\n' <<<"$1" | sort -n | head -1); echo "${m:-0}"; }

STATUS=0
# run_load NAME MODE PARLEY-LOAD-ARGS...: one run against a fresh node; leaves $OUT/NAME.json
# and sets SPREAD (connections per worker, cluster only). Fails when the node did not start.
run_load() {
  local name=$1 mode=$2; shift 2
  SPREAD=""
  start_node "$mode" "$OUT/$name.server.log" || { STATUS=1; return 1; }
  : >"$WORK/$name.fds"
  [ "$mode" = cluster ] && start_sampler "$WORK/$name.fds"
  echo "== $name ($mode): parley-load $*"
  local started=$SECONDS
  timeout -s KILL 600 "${LOAD_PIN[@]}" "$LOAD" "$@" --url "ws://127.0.0.1:$PORT/chat" --server-pid "$CPU_PIDS" \
    --quiet --json "$OUT/$name.json" >"$OUT/$name.log" 2>&1
  local rc=$?
  stop_sampler
  stop_node
  [ "$mode" = cluster ] && SPREAD=$(per_worker "$WORK/$name.fds")
  sed 's/^/   /' "$OUT/$name.log"
  echo "   ($(( SECONDS - started )) s${SPREAD:+; connections per worker $SPREAD})"
  [ $rc -eq 0 ] || STATUS=1
  [ -s "$OUT/$name.json" ] || { STATUS=1; return 1; }
  if [ "$mode" = cluster ] && [ "$(least "$SPREAD")" -lt 1 ]; then
    echo "cluster: $name: a worker held no client (connections per worker $SPREAD): not a cross-node run" >&2
    STATUS=1
  fi
}

# CPU figures of a run: sets CPU_REDIS and CPU_PARLEYD (seconds over the measurement).
cpu_split() {
  local mode=$1 file=$2 each
  each=$(json_list "$file" server_cpu_each_s)
  if [ "$mode" = cluster ]; then
    CPU_REDIS=${each%% *}
    CPU_PARLEYD=$(sum_list "${each#* }")
  else
    CPU_REDIS=0
    CPU_PARLEYD=$(sum_list "$each")
  fi
}
us_per() { awk -v c="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.3f", c * 1e6 / n; else print "-" }'; }

LOAD_START=$(uptime)
RUN_START=$SECONDS
echo "cluster: results in $OUT; $WORKERS workers; load average at the start: ${LOAD_START##*load average: }"
FANOUT_ROWS=() ROOM_ROWS=() KNEE="" KNEE_NOTE=""

# --- a. cross-node fan-out -------------------------------------------------------------------
if [ "$ONLY" != rooms ]; then
  RATE=$(( OFFERED / SUBS > 0 ? OFFERED / SUBS : 1 ))
  declare -A EFF  # deliveries per CPU-second, by run
  for load in closed open; do
    if [ $load = closed ]; then args=(--publishers 4 --pipeline 64); else args=(--rate "$RATE"); fi
    for mode in single cluster; do
      name=fanout-$load-$mode
      run_load "$name" "$mode" broadcast -c "$SUBS" "${args[@]}" --warmup "$WARMUP" --duration "$DURATION" || {
        FANOUT_ROWS+=("| $load | $mode | failed (see $name.log) | | | | | | | | |"); continue; }
      f=$OUT/$name.json
      deliveries=$(json "$f" deliveries)
      cpu_split "$mode" "$f"
      total=$(calc "$CPU_REDIS + $CPU_PARLEYD")
      EFF[$name]=$(awk -v d="$deliveries" -v c="$total" 'BEGIN { if (c > 0) printf "%.0f", d / c; else print "" }')
      p50=$(json_latency "$f" latency_us p50) p99=$(json_latency "$f" latency_us p99)
      errors=$(json "$f" total)
      verdict="" ratio="-"
      if [ "$mode" = cluster ]; then
        single=${EFF[fanout-$load-single]:-}
        if [ -n "$single" ] && [ -n "${EFF[$name]}" ]; then
          ratio=$(awk -v c="${EFF[$name]}" -v s="$single" 'BEGIN { printf "%.2f", c / s }')
          if check "$ratio >= 0.5"; then verdict="CPU PASS ($ratio x >= 0.5 x)"; else verdict="CPU FAIL ($ratio x < 0.5 x)"; fi
        else
          verdict="CPU n/a (no single-process figure)"
        fi
        if [ $load = open ]; then
          offered=$(( RATE * SUBS ))
          rate_ok=$(awk -v d="$(json "$f" deliveries_per_s)" -v o="$offered" 'BEGIN { print (d >= 0.9 * o) ? 1 : 0 }')
          if [ -n "$p99" ] && check "$p99 < $P99_MS * 1000" && [ "$rate_ok" = 1 ]; then
            verdict="$verdict; p99 PASS (< $P99_MS ms at $(grouped "$offered")/s)"
          else
            verdict="$verdict; p99 FAIL ($(human_us "$p99") at $(grouped "$(json "$f" deliveries_per_s)") of $(grouped "$offered")/s)"
          fi
        fi
      fi
      [ "${errors:-1}" = 0 ] || verdict="FAIL: $errors errors${verdict:+; $verdict}"
      FANOUT_ROWS+=("| $load | $mode${SPREAD:+ ($SPREAD)} | $(grouped "$(json "$f" deliveries_per_s)") ($(grouped "$deliveries") of $(grouped "$(json "$f" deliveries_expected)")) | $(human_us "$p50") | $(human_us "$p99") | $(us_per "$CPU_PARLEYD" "$deliveries") | $( [ "$mode" = cluster ] && us_per "$CPU_REDIS" "$deliveries" || echo -) | $(grouped "${EFF[$name]}") | $ratio | $errors | ${verdict:--} |")
    done
  done
fi

# --- b. many small rooms ---------------------------------------------------------------------
if [ "$ONLY" != fanout ]; then
  members=$(( USERS * 2 / ROOMS ))
  for rate in $RATES; do
    name=rooms-$rate
    status_before=$STATUS
    run_load "$name" cluster chat -c "$USERS" --rooms "$ROOMS" --rooms-per-user 2 --rate "$rate" \
      --warmup "$WARMUP" --duration "$DURATION" || {
      ROOM_ROWS+=("| $rate | failed (see $name.log) | | | | | | | |"); KNEE_NOTE="a run failed at $rate msg/s"; break; }
    f=$OUT/$name.json
    acked=$(json "$f" acked) measured=$(json "$f" measured_s) window=$(json "$f" server_cpu_window_s)
    cpu_split cluster "$f"
    acked_rate=$(awk -v a="$acked" -v m="$measured" 'BEGIN { if (m > 0) printf "%.0f", a / m; else print 0 }')
    p50=$(json_latency "$f" latency_us p50) p99=$(json_latency "$f" latency_us p99)
    errors=$(json "$f" total)
    redis_pct=$(awk -v c="$CPU_REDIS" -v w="$window" 'BEGIN { if (w > 0) printf "%.0f", 100 * c / w; else print "-" }')
    why=""
    [ "${errors:-1}" = 0 ] || why="$errors errors"
    { [ -n "$p99" ] && check "$p99 <= $P99_MS * 1000"; } || why="${why:+$why, }p99 over $P99_MS ms"
    check "$acked_rate >= 0.95 * $rate" || why="${why:+$why, }acked under 95% of offered"
    ROOM_ROWS+=("| $(grouped "$rate") | $(grouped "$acked_rate") | $(grouped "$(json "$f" deliveries_per_s)") | $(human_us "$p50") | $(human_us "$p99") | $errors | $(us_per "$CPU_REDIS" "$acked") ($redis_pct %) | $(us_per "$CPU_PARLEYD" "$acked") | ${why:-ok} |")
    if [ -n "$why" ]; then
      # The knee is what this part measures: errors past it are the finding, not a failed run.
      STATUS=$status_before
      KNEE_NOTE="broke at $(grouped "$rate") msg/s offered: $why"
      break
    fi
    KNEE=$acked_rate
  done
fi

LOAD_END=$(uptime)
{
  echo "# parley over Redis: cross-node fan-out and many small rooms, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "$("$PARLEYD" --version 2>/dev/null | head -1) (git $(git rev-parse --short HEAD 2>/dev/null || echo '?')) \`--workers $WORKERS --redis\` (one port, SO_REUSEPORT) on redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') (\`appendonly yes, appendfsync ${REDIS_FSYNC:-everysec}\`), server processes pinned with \`${SERVER_PIN[*]:-no pinning}\`, parley-load with \`${LOAD_PIN[*]:-no pinning}\`; a fresh Redis and parleyd per run; $DURATION s measured per run$( [ $QUICK = 1 ] && echo ' (--quick: a smoke run, the figures mean nothing)')."
  echo "Machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), Linux $(uname -r). Load average at the start: ${LOAD_START##*load average: }; at the end: ${LOAD_END##*load average: }."
  if [ ${#FANOUT_ROWS[@]} -ne 0 ]; then
    echo
    echo "## a. Cross-node fan-out: $(grouped "$SUBS") subscribers in one room"
    echo
    echo "closed = 4 publishers, --pipeline 64; open = --rate $RATE msg/s ($(grouped $(( RATE * SUBS ))) deliveries/s offered). single = one parleyd, --store none, no Redis; cluster (connections per worker) = $WORKERS workers + Redis. CPU over the measurement (/proc, 10 ms ticks) per delivery; efficiency = deliveries per CPU-second of parleyd + Redis; ratio = cluster / single. Targets: p99 < $P99_MS ms at 100k deliveries/s offered; ratio >= 0.5."
    echo
    echo "| load | server | deliveries/s (received of expected) | p50 | p99 | parleyd CPU us/delivery | Redis CPU us/delivery | deliveries per CPU-s | ratio | errors | targets |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${FANOUT_ROWS[@]}"
  fi
  if [ ${#ROOM_ROWS[@]} -ne 0 ]; then
    echo
    echo "## b. Many small rooms: $(grouped "$USERS") users in $(grouped "$ROOMS") rooms (2 each, ~$members members a room), $WORKERS workers + Redis"
    echo
    echo "Open loop, the offered rate stepped up until p99 > $P99_MS ms, a lost delivery or acked < 95% of offered. CPU per room message acked over the measurement."
    echo
    echo "| offered msg/s | acked msg/s | deliveries/s | p50 | p99 | errors | Redis CPU us/msg (% of a core) | parleyd CPU us/msg | |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROOM_ROWS[@]}"
    echo
    sustained="no step held"
    [ -z "$KNEE" ] || sustained="$(grouped "$KNEE") room messages/s acked (the last step that held)"
    echo "Sustained: $sustained; ${KNEE_NOTE:-every step held (raise --rates to find the knee)}."
  fi
  echo
  echo "Total time: $(( SECONDS - RUN_START )) s."
} >"$OUT/results.md"

echo
cat "$OUT/results.md"
echo
echo "cluster: wrote $OUT/results.md"
exit $STATUS
