#!/usr/bin/env bash
# Filling one big room (issue 18, goal 4): the server CPU of N members joining one room, against
# the CPU of the same N upgrades alone, so that what the joins themselves cost (presence
# announcements above all: O(N^2) frames when every join is told to every member) stands apart.
# parleyd (one process, --store none) on core 0, parley-load on core 1; CPU is utime+stime of
# parleyd from /proc over the whole run (start-up excluded), ramp 2,000 connections/s.
#
# usage: bash bench/room_fill.sh [MEMBERS] [ROUNDS]     (defaults 9999 and 3; about 1 min)
# MEMBERS stays under the default --max-room-members of 10,000 (the publisher joins too).
# Prints one line per run and the medians. Exit status 0 when every run joined every member.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
members=${1:-9999}
rounds=${2:-3}
BUILD=${PARLEY_BUILD_DIR:-build}
LOAD="$BUILD/parley-load"
for tool in "$BUILD/parleyd" "$LOAD"; do
  [ -x "$tool" ] || { echo "room_fill: $tool is missing (run make)" >&2; exit 2; }
done
pick_pinning one
tick=$(getconf CLK_TCK)
out=$(mktemp -d)
trap 'stop_parleyd; rm -rf "$out"' EXIT
status=0

# run KIND: one fill (KIND=join) or the upgrades alone (KIND=upgrade); prints the CPU seconds.
run() {
  local kind=$1 before after
  start_parleyd "$out/server.log" --store none --ping-interval 0 --rate-limit 0 \
    --max-connections-per-ip 0 --max-handshakes-per-ip 0 || return 1
  before=$(cpu_ticks "$SERVER_CPU_PID")
  if [ "$kind" = join ]; then
    "${LOAD_PIN[@]}" "$LOAD" broadcast --url "ws://127.0.0.1:$PORT/chat" -c "$members" --publishers 1 --rate 1 \
      --duration 1 --ramp 2000 --room big -j 2 --quiet --json "$out/run.json" >"$out/run.out" 2>&1
  else
    "${LOAD_PIN[@]}" "$LOAD" idle --url "ws://127.0.0.1:$PORT/chat" -c "$members" --ramp 2000 --duration 1 \
      -j 2 --quiet --json "$out/run.json" >"$out/run.out" 2>&1
  fi
  local rc=$?
  after=$(cpu_ticks "$SERVER_CPU_PID")
  stop_parleyd
  if [ $rc -ne 0 ] || ! grep -q '"errors": {"total": 0' "$out/run.json"; then
    echo "room_fill: the $kind run failed (exit $rc): $(tail -3 "$out/run.out")" >&2
    return 1
  fi
  calc "($after - $before) / $tick"
}

joins=() upgrades=()
for r in $(seq "$rounds"); do
  j=$(run join) || { status=1; continue; }
  u=$(run upgrade) || { status=1; continue; }
  joins+=("$j") upgrades+=("$u")
  echo "round $r: $members members joining one room: $j s of server CPU; the same upgrades alone: $u s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }
if [ ${#joins[@]} -gt 0 ]; then
  mj=$(median "${joins[@]}") mu=$(median "${upgrades[@]}")
  echo "median: fill $mj s, upgrades $mu s, the joins themselves $(calc "$mj - $mu") s of server CPU ($members members, $("$BUILD/parleyd" --version | head -1))"
fi
exit $status
