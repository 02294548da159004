#!/usr/bin/env bash
# Filling one big room (issue 18, goal 4): the server CPU of N members joining one room, against
# the CPU of the same N upgrades alone, so that what the joins themselves cost (presence
# announcements above all: O(N^2) frames when every join is told to every member) stands apart.
# One parleyd (--store none) by default; with --workers W, `parleyd --workers W --redis URL` on a
# private redis-server (one chat: the room spans the workers, issue 15), and the server CPU is
# that of the workers and Redis together. Server on core 0, parley-load on core 1; CPU is
# utime+stime from /proc over the whole run (start-up excluded), ramp --ramp connections/s.
#
# usage: bash bench/room_fill.sh [MEMBERS] [ROUNDS] [--workers W] [--ramp R]
#   MEMBERS      members joining (default 9999: under the default --max-room-members of
#                10,000 with the publisher; above it the server runs with --max-room-members 0)
#   ROUNDS       fills, each followed by an upgrades-only run (default 3; about 1 min at 9,999)
#   --workers W  W workers on one Redis (default: one parleyd, no Redis); each process may hold
#                20,000 fds here, so 100,000 members want W >= 6
#   --ramp R     new connections per second (default 2000)
# Prints one line per run (with --workers, Redis's share too) and the medians. Exit status 0 when
# every run joined every member.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
members=9999 rounds=3 workers=0 ramp=2000 positional=0
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers=${2:?}; shift 2 ;;
    --ramp) ramp=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "room_fill: unknown option $1" >&2; exit 2 ;;
    *) if [ $positional -eq 0 ]; then members=$1; else rounds=$1; fi; positional=$((positional + 1)); shift ;;
  esac
done
for v in "$members" "$rounds" "$workers" "$ramp"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "room_fill: not a count: $v" >&2; exit 2; }
done
BUILD=${PARLEY_BUILD_DIR:-build}
LOAD="$BUILD/parley-load"
for tool in "$BUILD/parleyd" "$LOAD"; do
  [ -x "$tool" ] || { echo "room_fill: $tool is missing (run make)" >&2; exit 2; }
done
[ "$workers" -eq 0 ] || command -v redis-server >/dev/null || { echo "room_fill: --workers needs redis-server" >&2; exit 2; }
pick_pinning one
tick=$(getconf CLK_TCK)
load_procs=$(( (members + 18999) / 19000 ))  # parley-load: at most 19,000 connections a process
SERVER_LIFETIME=$(( members / ramp * 3 + 120 ))
out=$(mktemp -d)
trap 'stop_parleyd; stop_redis; rm -rf "$out"' EXIT
status=0
server_args=(--ping-interval 0 --rate-limit 0 --max-connections-per-ip 0 --max-handshakes-per-ip 0)
[ "$members" -lt 10000 ] || server_args+=(--max-room-members 0)

# run KIND: one fill (KIND=join) or the upgrades alone (KIND=upgrade); prints the CPU seconds.
run() {
  local kind=$1 before after pids
  if [ "$workers" -eq 0 ]; then
    start_parleyd "$out/server.log" --store none "${server_args[@]}" || return 1
    pids=("$SERVER_CPU_PID")
  else
    start_redis "$out/redis" || return 1
    start_parleyd "$out/server.log" --workers "$workers" --redis "$REDIS_URL" "${server_args[@]}" || return 1
    pids=("${SERVER_PIDS[@]}" "$REDIS_PID")
    [ ${#SERVER_PIDS[@]} -eq $((workers + 1)) ] || { echo "room_fill: found ${#SERVER_PIDS[@]} of $workers workers + supervisor" >&2; return 1; }
  fi
  before=$(cpu_ticks "${pids[@]}")
  local redis_before=0 redis_after=0
  [ "$workers" -eq 0 ] || redis_before=$(cpu_ticks "$REDIS_PID")
  if [ "$kind" = join ]; then
    "${LOAD_PIN[@]}" "$LOAD" broadcast --url "ws://127.0.0.1:$PORT/chat" -c "$members" --publishers 1 --rate 1 \
      --duration 1 --ramp "$ramp" --room big -j "$load_procs" --quiet --json "$out/run.json" >"$out/run.out" 2>&1
  else
    "${LOAD_PIN[@]}" "$LOAD" idle --url "ws://127.0.0.1:$PORT/chat" -c "$members" --ramp "$ramp" --duration 1 \
      -j "$load_procs" --quiet --json "$out/run.json" >"$out/run.out" 2>&1
  fi
  local rc=$?
  after=$(cpu_ticks "${pids[@]}")
  [ "$workers" -eq 0 ] || redis_after=$(cpu_ticks "$REDIS_PID")
  stop_parleyd
  stop_redis
  if [ $rc -ne 0 ] || ! grep -q '"errors": {"total": 0' "$out/run.json"; then
    echo "room_fill: the $kind run failed (exit $rc): $(tail -3 "$out/run.out")" >&2
    return 1
  fi
  echo "$(calc "($after - $before) / $tick") $(calc "($redis_after - $redis_before) / $tick")"
}

where="one parleyd"
[ "$workers" -eq 0 ] || where="$workers workers on one Redis"
joins=() upgrades=()
for r in $(seq "$rounds"); do
  read -r j rj < <(run join) && [ -n "${j:-}" ] || { status=1; continue; }
  read -r u ru < <(run upgrade) && [ -n "${u:-}" ] || { status=1; continue; }
  joins+=("$j") upgrades+=("$u")
  share=""
  [ "$workers" -eq 0 ] || share=" (Redis: $rj s of the fill, $ru s of the upgrades)"
  echo "round $r: $members members joining one room ($where): $j s of server CPU; the same upgrades alone: $u s$share"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }
if [ ${#joins[@]} -gt 0 ]; then
  mj=$(median "${joins[@]}") mu=$(median "${upgrades[@]}")
  echo "median: fill $mj s, upgrades $mu s, the joins themselves $(calc "$mj - $mu") s of server CPU ($members members, $where, $("$BUILD/parleyd" --version | head -1))"
fi
exit $status
