#!/usr/bin/env bash
# The durable store's performance items of issue 14, end to end over loopback:
#   1. ack latency p50/p99 with group commit at 1k, 10k and 50k msg/s offered (parley-load chat:
#      send to ack, the ack leaving after the commit of the message's batch), with commits/s and
#      messages per commit from parleyd's /metrics, and the deliveries/s seen meanwhile;
#   2. recovery of 1,000 missed messages: from the join with since_seq to the last missed message
#      (bench/recovery_probe.py; the reader comes back with its resume token).
# Each rate gets a fresh parleyd on a fresh SQLite store in a temporary folder (--sync normal
# unless DURABLE_SYNC=full), --rate-limit 0, pinned to core 0 and the load to core 1 when there
# are two. CPU-bound: run it on a quiet machine. Prints a markdown table and writes the JSON of
# every run to $OUT (default results/durable-DATE).
#
# usage: bash bench/durable.sh [--quick] [--rates "1000 10000 50000"] [--duration S] [--users N]
#   --quick          a smoke run: 200 and 400 msg/s for 1 s, 20 users in 4 rooms, 100 missed
#   --rates LIST     offered msg/s, space-separated (default "1000 10000 50000")
#   --duration S     measured seconds per rate (default 10)
#   --users N        chat users (default 500, in 50 rooms, 2 rooms each)
#   --missed N       messages the recovery probe misses (default 1000)
# Environment: PARLEY_BUILD_DIR (default build), DURABLE_SYNC=normal|full, OUT.
set -u -o pipefail

die() { echo "durable: $*" >&2; exit 2; }

RATES="1000 10000 50000"
DURATION=10
USERS=500
ROOMS=50
MISSED=1000
RUNS=5
while [ $# -gt 0 ]; do
  case $1 in
    --quick) RATES="200 400" DURATION=1 USERS=20 ROOMS=4 MISSED=100 RUNS=2; shift ;;
    --rates) RATES=${2:?}; shift 2 ;;
    --duration) DURATION=${2:?}; shift 2 ;;
    --users) USERS=${2:?}; shift 2 ;;
    --missed) MISSED=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (try --help)" ;;
  esac
done

BUILD=${PARLEY_BUILD_DIR:-build}
LOAD=$BUILD/parley-load
PARLEYD=$BUILD/parleyd
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/parleyd_port.sh"
[ -x "$LOAD" ] && [ -x "$PARLEYD" ] || die "$LOAD or $PARLEYD not found: run make first (or set PARLEY_BUILD_DIR)"
command -v python3 >/dev/null || die "python3 is needed for /metrics and the recovery probe"
SYNC=${DURABLE_SYNC:-normal}

OUT=${OUT:-results/durable-$(date +%Y-%m-%d-%H%M%S)}
mkdir -p "$OUT" || die "cannot create $OUT"
STORE_DIR=$(mktemp -d) || die "mktemp failed"

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_PIN=(taskset -c 0) LOAD_PIN=(taskset -c 1)
else
  SERVER_PIN=() LOAD_PIN=()
fi

SERVER_PID=""
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=""
}
cleanup() { stop_server; rm -rf "$STORE_DIR"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts parleyd on a fresh store; sets SERVER_PID and PORT.
start_server() {
  local log=$1
  rm -f "$STORE_DIR"/parley.db*
  "${SERVER_PIN[@]}" "$PARLEYD" --listen 127.0.0.1:0 --store "$STORE_DIR/parley.db" --sync "$SYNC" \
    --rate-limit 0 --max-room-members 0 --drain-timeout 0 >"$log" 2>&1 &
  SERVER_PID=$!
  PORT=$(parleyd_port "$log" "$SERVER_PID") || true
  [ -n "$PORT" ] || { echo "durable: parleyd did not start: $(tail -3 "$log")" >&2; return 1; }
}

# The value of an unlabelled series in /metrics.
metric() {
  python3 - "$PORT" "$1" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
for line in body.splitlines():
    if line.startswith(sys.argv[2] + " "):
        print(line.split()[1]); break
PY
}

# Field `key` of object `object` in a parley-load JSON file ("" when absent).
json_field() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
value = data.get(sys.argv[2], {}) if sys.argv[2] else data
value = value.get(sys.argv[3], "") if isinstance(value, dict) else ""
print(value)
PY
}

STATUS=0
ROWS=()
for RATE in $RATES; do
  start_server "$OUT/parleyd-$RATE.log" || { STATUS=1; continue; }
  commits0=$(metric parley_store_commits_total) messages0=$(metric parley_store_messages_total)
  start=$(date +%s.%N)
  "${LOAD_PIN[@]}" "$LOAD" chat --url "ws://127.0.0.1:$PORT/chat" -c "$USERS" --rooms "$ROOMS" --rooms-per-user 2 \
    --rate "$RATE" --warmup 1 --duration "$DURATION" --quiet --json "$OUT/chat-$RATE.json" \
    >"$OUT/chat-$RATE.txt" 2>&1 || STATUS=1
  elapsed=$(echo "$(date +%s.%N) - $start" | bc -l)
  commits=$(( $(metric parley_store_commits_total) - commits0 ))
  messages=$(( $(metric parley_store_messages_total) - messages0 ))
  max_batch=$(metric parley_store_max_batch)
  stop_server
  f=$OUT/chat-$RATE.json
  [ -s "$f" ] || { ROWS+=("| $RATE | failed: see $OUT/chat-$RATE.txt | | | | | |"); STATUS=1; continue; }
  ROWS+=("$(printf '| %s | %s | %s | %.0f | %.1f | %s | %.0f |' "$RATE" \
    "$(printf '%.0f' "$(json_field "$f" ack_latency_us p50)") us" "$(printf '%.0f' "$(json_field "$f" ack_latency_us p99)") us" \
    "$(echo "$commits / $elapsed" | bc -l)" "$(echo "$messages / ($commits + ($commits == 0))" | bc -l)" \
    "$max_batch" "$(json_field "$f" "" deliveries_per_s)")")
done

start_server "$OUT/parleyd-recovery.log" || STATUS=1
RECOVERY=""
if [ -n "$SERVER_PID" ]; then
  RECOVERY=$(python3 "$HERE/recovery_probe.py" 127.0.0.1 "$PORT" --missed "$MISSED" --runs "$RUNS" 2>"$OUT/recovery.err") ||
    { STATUS=1; RECOVERY="failed: $(tail -1 "$OUT/recovery.err")"; }
  echo "$RECOVERY" >"$OUT/recovery.json"
  stop_server
fi

echo
echo "parleyd --store FILE --sync $SYNC; parley-load chat -c $USERS --rooms $ROOMS --rooms-per-user 2 --warmup 1 --duration $DURATION"
echo
echo "| offered msg/s | ack p50 | ack p99 | commits/s (whole run) | messages per commit | largest batch | deliveries/s |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "recovery of $MISSED missed messages (join with since_seq to the last one, $RUNS runs): $RECOVERY"
echo "(JSON and logs in $OUT)"
exit "$STATUS"
