#!/usr/bin/env bash
# Measures parleyd's user-space memory per idle, upgraded WebSocket connection: RSS growth from
# BASE to TOTAL connections held by parley-idle, divided by the difference. Bounded in time;
# cleans up after itself. Usage: bench/idle_memory.sh [TOTAL] [BASE]   (defaults 19000 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${PARLEY_BUILD_DIR:-build}
TOTAL=${1:-19000}
BASE=${2:-1000}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

out=$(mktemp)
"$BUILD/parleyd" --listen 127.0.0.1:0 >"$out" 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 50); do grep -q "listening on" "$out" && break; sleep 0.1; done
port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$out")
[ -n "$port" ] || { echo "parleyd did not start"; cat "$out"; exit 1; }

connections() { curl -s "http://127.0.0.1:$port/metrics" | awk '$1=="parley_connections"{print $2}'; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$server/status"; }
wait_for() {
  local want=$1
  for _ in $(seq 600); do
    local have; have=$(connections)
    # /metrics itself is one connection while it is being served.
    [ "${have:-0}" -ge $((want + 1)) ] && return 0
    sleep 0.1
  done
  echo "timed out waiting for $want connections (have $(connections))"; exit 1
}

"$BUILD/parley-idle" --url "ws://127.0.0.1:$port/echo" -c "$BASE" --rate 20000 --duration 120 >/dev/null &
pids+=("$!")
wait_for "$BASE"
sleep 1
rss_base=$(rss_kib)
"$BUILD/parley-idle" --url "ws://127.0.0.1:$port/echo" -c $((TOTAL - BASE)) --rate 20000 --duration 120 >/dev/null &
pids+=("$!")
wait_for "$TOTAL"
sleep 1
rss_total=$(rss_kib)
per=$(( (rss_total - rss_base) * 1024 / (TOTAL - BASE) ))
echo "idle connections: $BASE -> $TOTAL"
echo "parleyd RSS: ${rss_base} KiB -> ${rss_total} KiB"
echo "user-space bytes per idle upgraded connection: $per"
