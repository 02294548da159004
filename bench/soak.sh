#!/usr/bin/env bash
# The attack soak (issue 13): runs waves of every attack mix against one parleyd while legit users
# chat, and asserts what must hold. Loopback only, bounded in time and count, stops by itself.
#
#   bash bench/soak.sh            the long version: 3 waves of 90 s, 30 s quiet after each (~8 min)
#   bash bench/soak.sh --short    about a minute: 2 smaller waves (tests/soak_test.cpp runs this)
#   options: --waves N --wave S --quiet S --max-memory BYTES (passed to parleyd; default 256M)
#            --keep DIR (write the logs there)
#
# A wave: 2 floods of non-reading room members with one publisher each at 19 msg/s of 4 KB and
# member churn (every leave a notice queued behind the flood), 1,000 slowloris connections from
# one address and 1,000 from 1,000 addresses, garbage heads (random bytes, TLS ClientHellos), and
# connections filling room history. Throughout: legit users chat (parley-load chat, every message
# acknowledged and delivered exactly as often as the acks say) and a probe opens a new /chat
# connection every 100 ms.
#
# Asserts: parleyd's RSS never passes the memory budget (--max-memory plus the RSS it had before
# the first wave); after each wave's quiet time RSS is within 2x of the pre-wave RSS, and later
# waves do not end higher than the first by more than 25%; the probe's time to 101 has p99 under
# 1 s and no failure; parley-load reports no error (nothing lost); garbage is answered at once
# (under 1 s); parleyd is still running at the end. Exit 0 when all hold, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/parleyd_port.sh
BUILD=${PARLEY_BUILD_DIR:-build}

waves=3 wave=90 quiet=30 flood_members=2000 slow_conns=1000 history_conns=20 legit_users=40
max_memory=256M keep=""
while [ $# -gt 0 ]; do
  case $1 in
    --short) waves=2 wave=15 quiet=8 flood_members=1000 slow_conns=500 history_conns=10 legit_users=20 ;;
    --waves) waves=$2; shift ;;
    --wave) wave=$2; shift ;;
    --quiet) quiet=$2; shift ;;
    --max-memory) max_memory=$2; shift ;;
    --keep) keep=$2; shift ;;
    *) echo "soak.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$keep" ]; then mkdir -p "$keep" && cp -r "$work"/. "$keep"/; fi
  rm -rf "$work"
}
trap cleanup EXIT

to_bytes() {  # 256M -> bytes
  local v=$1
  case $v in
    *K|*k) echo $(( ${v%?} * 1024 )) ;;
    *M|*m) echo $(( ${v%?} * 1024 * 1024 )) ;;
    *G|*g) echo $(( ${v%?} * 1024 * 1024 * 1024 )) ;;
    *) echo "$v" ;;
  esac
}
budget_kib=$(( $(to_bytes "$max_memory") / 1024 ))

# Under ASan (make asan) freed blocks wait in a quarantine before reuse, so RSS would track
# allocation churn rather than live memory: no quarantine for the child, same checks.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=0"

# The durable store is on (a SQLite file in the work folder), as with `make run`.
# --rate-limit stays at its default (the floods publish inside it); --handshake-timeout is the
# default too: the slowloris must not need a short one.
"$BUILD/parleyd" --listen 127.0.0.1:0 --store "$work/soak.db" --max-memory "$max_memory" --ping-interval 5000 \
  --pong-timeout 5000 >"$work/parleyd.out" 2>"$work/parleyd.err" &
server=$!
pids+=("$server")
port=$(parleyd_port "$work/parleyd.out" "$server") || true
[ -n "$port" ] || { echo "soak: parleyd did not start"; cat "$work/parleyd.err"; exit 1; }

rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$server/status" 2>/dev/null || echo 0; }
attack() { python3 bench/soak_attack.py "$@" --port "$port"; }

total=$(( waves * (wave + quiet) + 5 ))
"$BUILD/parley-load" chat --url "ws://127.0.0.1:$port/chat" -c "$legit_users" --rooms 4 \
  --rooms-per-user 2 --user-rate 1 --warmup 2 --duration "$total" --quiet \
  --json "$work/legit.json" >"$work/legit.out" 2>&1 &
legit=$!
pids+=("$legit")
attack probe --interval 0.1 --duration "$((total + 2))" >"$work/probe.json" 2>&1 &
probe=$!
pids+=("$probe")

# RSS sampled every 200 ms; the peak is what the budget is checked against.
( while kill -0 "$server" 2>/dev/null; do echo "$(date +%s.%N) $(rss_kib)"; sleep 0.2; done ) >"$work/rss.log" &
pids+=("$!")

sleep 4
pre=$(rss_kib)
first_after=0
failures=()
echo "soak: parleyd pid $server on port $port, budget $max_memory, RSS before the first wave ${pre} KiB"
for w in $(seq "$waves"); do
  before=$(rss_kib)
  attackers=()
  attack flood --members "$flood_members" --rate 19 --churn 5 --size 4000 --room "flood$w" --tag "a$w" \
    --sources 250 --duration "$wave" >"$work/flood-a$w.json" 2>&1 & attackers+=("$!")
  attack flood --members "$flood_members" --rate 19 --churn 5 --size 4000 --room "flood$w-b" --tag "b$w" \
    --sources 250 --duration "$wave" >"$work/flood-b$w.json" 2>&1 & attackers+=("$!")
  attack slowloris --conns "$slow_conns" --sources 1 --duration "$wave" >"$work/slow-one$w.json" 2>&1 & attackers+=("$!")
  attack slowloris --conns "$slow_conns" --sources "$slow_conns" --duration "$wave" >"$work/slow-many$w.json" 2>&1 & attackers+=("$!")
  attack garbage --rate 20 --sources 200 --duration "$wave" >"$work/garbage$w.json" 2>&1 & attackers+=("$!")
  attack history --conns "$history_conns" --rooms 32 --size 4000 --sources "$history_conns" --tag "$w" \
    --duration "$wave" >"$work/history$w.json" 2>&1 & attackers+=("$!")
  pids+=("${attackers[@]}")
  for a in "${attackers[@]}"; do wait "$a" || failures+=("wave $w: an attacker failed (exit $?)"); done
  sleep "$quiet"
  after=$(rss_kib)
  peak=$(awk -v t="$before" '$2 > m { m = $2 } END { print m + 0 }' "$work/rss.log")
  echo "soak: wave $w: RSS before ${before} KiB, peak so far ${peak} KiB, ${quiet} s after ${after} KiB"
  for f in "$work"/*"$w".json; do echo "  $(basename "$f" .json): $(tail -1 "$f")"; done
  kill -0 "$server" 2>/dev/null || { failures+=("wave $w: parleyd died"); break; }
  [ "$after" -le $(( 2 * before )) ] || failures+=("wave $w: RSS ${after} KiB after the quiet time, over 2x the ${before} KiB before the wave")
  if [ "$w" = 1 ]; then first_after=$after
  elif [ "$after" -gt $(( first_after * 5 / 4 )) ]; then
    failures+=("wave $w: RSS ${after} KiB after the wave, over 1.25x the first wave's ${first_after} KiB (not a plateau)")
  fi
  garbage_max=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1]).get("answer_max_ms", 0))' "$work/garbage$w.json" 2>/dev/null || echo -1)
  python3 -c 'import sys; sys.exit(0 if 0 <= float(sys.argv[1]) < 1000 else 1)' "$garbage_max" ||
    failures+=("wave $w: garbage answered after ${garbage_max} ms (want < 1000)")
done

wait "$legit" && legit_rc=0 || legit_rc=$?
wait "$probe" || true
peak=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$work/rss.log")
echo "soak: peak RSS ${peak} KiB (budget ${budget_kib} KiB + ${pre} KiB before the first wave)"
[ "$peak" -le $(( budget_kib + pre )) ] || failures+=("peak RSS ${peak} KiB over the budget")
echo "soak: legit users (parley-load chat):"; grep -E 'sent|deliveries|errors|refused' "$work/legit.out" | sed 's/^/  /' || true
[ "$legit_rc" = 0 ] || { failures+=("legit chat reported errors (parley-load exit $legit_rc)"); tail -20 "$work/legit.out"; }
echo "soak: probe: $(cat "$work/probe.json")"
python3 - "$work/probe.json" <<'PY' || failures+=("probe: time to 101 p99 >= 1 s, or failures")
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
bad = [k for k in r if k.startswith("failed_")]
sys.exit(0 if r.get("ok", 0) > 0 and r.get("p99_ms", 1e9) < 1000 and not bad else 1)
PY
kill -0 "$server" 2>/dev/null || failures+=("parleyd is not running at the end")

if [ ${#failures[@]} -gt 0 ]; then
  printf 'soak: FAILED: %s\n' "${failures[@]}"
  echo "--- parleyd stderr (last 20 lines)"; tail -20 "$work/parleyd.err"
  exit 1
fi
echo "soak: all checks held"
