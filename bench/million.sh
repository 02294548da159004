#!/usr/bin/env bash
# The million-connection test, end to end, on one machine over loopback.
#
# Each process may hold at most 20,000 file descriptors here (a hard limit), so N connections
# take W = ceil(N / 19,500) parleyd workers sharing one port with SO_REUSEPORT, and
# H = ceil(N / 19,500) parley-idle holders, each spreading its source addresses over its own
# 250 addresses of 127.0.0.0/8 (127.<h+1>.0.1 ..). The script raises the sysctls that can be
# raised (and restores them), starts the workers, ramps the holders up at --rate connections per
# second in total, holds for --hold seconds with heartbeats on (parleyd's defaults unless
# --ping-interval/--pong-timeout say otherwise: a ping every 30 s, a 10 s pong deadline), and
# prints:
#   - connections held (and, when it could not reach N, the highest count and why),
#   - connections lost (must be 0) and reconnected, failed connection attempts,
#   - how often workers paced admission (they log when they fall behind and when they catch up),
#   - pings answered by the holders (parleyd's own counters sit behind the shared port, where
#     /metrics reaches one random worker, so the holders count them), and how far the heartbeat
#     budget stretched the ping period (the workers log it),
#   - server user-space memory per connection: the workers' private memory (RssAnon) growth from
#     just started to all connections held, divided by the connections held; and the same with
#     VmRSS, which also counts shared-library pages faulted in by the first handshakes (about
#     2 MiB per worker, physically shared by all of them),
#   - kernel memory per connection (one loopback connection = two sockets, the server's and the
#     holder's), from /proc/meminfo deltas between "workers started, no connections" and
#     "all held": Slab (socket, inode, dentry, file, epoll item objects), and
#     MemTotal-MemAvailable minus the user-space RSS growth of workers and holders (everything
#     else the kernel took: slab, page tables, socket buffers),
#   - server CPU while idle: the workers' utime+stime (/proc/PID/stat) over a 30 s window in
#     the hold, as a percentage of one core.
# With --redis the workers are one chat (issue 15): a private redis-server (a free loopback
# port, never 6379; appendonly yes, appendfsync everysec unless REDIS_FSYNC=always) and every
# worker started with --redis URL (each worker a node, as `parleyd --workers W --redis URL`
# makes them; separate processes here so that each gets its own --metrics-listen port). After
# the hold, with the N connections still open, a cross-node check: parley-load broadcast puts
# K = max(100, 20 x W) subscribers and a publisher in one room (the kernel spreads them over the
# workers) and publishes 10 msg/s for 1 s; it passes only if every subscriber joined and
# parley-load saw every delivery (published x joined, exact) AND every worker's own
# parley_chat_room_members (its /metrics, sampled every 0.2 s; the holders join no room) reached
# 2, so each worker held at least one subscriber besides a possible publisher: every worker
# delivered the messages, which only one worker received from the publisher. Redis's CPU in the
# idle window is reported too.
# Every process it starts runs under `timeout`, so even a killed script leaves nothing running
# for long; the EXIT trap stops them all and restores the sysctls.
#
# usage: bench/million.sh [N] [--hold S] [--rate R] [--workers W] [--per-holder K]
#                         [--cpu-window S] [--min-available-mib M] [--keep-logs] [--redis]
#   N                    connections (default 1000000; k/M suffixes)
#   --hold S             seconds to hold once all are open (default 300)
#   --rate R             connection attempts per second over all holders (default 20000)
#   --workers W          parleyd processes (default ceil(N / 19500))
#   --per-holder K       connections per parley-idle process, at most 19500 (default 19500)
#   --cpu-window S       length of the idle-CPU window (default 30)
#   --min-available-mib M  stop ramping when MemAvailable falls below M MiB (default 2048)
#   --ramp-timeout S     give up ramping after S seconds (default N / rate * 4 + 60)
#   --nice NICE          run workers and holders at this niceness (default 0; negative needs
#                        root): on a shared machine the heartbeats must not starve behind
#                        other work, or parleyd closes connections that miss the pong deadline
#   --ping-interval MS   parleyd's heartbeat period (default 30000, parleyd's default); the
#                        idle CPU is almost all heartbeat, so it scales with 1 / MS
#   --pong-timeout MS    parleyd's pong deadline (default 10000, parleyd's default)
#   --max-pings-per-second N  the heartbeat budget of all workers together, split evenly
#                        (default parleyd's automatic one, 10000 per CPU: the workers here are
#                        separate processes, so the script splits it); past it the ping period
#                        stretches, and the results say how far (from the workers' log lines)
#   --keep-logs          keep the per-process logs (they are kept anyway when the run fails)
#   --redis              one chat over a private Redis, and the cross-node check after the hold
#   --io-uring           workers send through io_uring (parleyd --io-uring on): the heartbeat's
#                        pings of an iteration go in one submission instead of one sendmsg each
# Exit status: 0 when N connections were held and none was lost, 1 otherwise, 2 on bad usage.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${PARLEY_BUILD_DIR:-build}

die() { echo "million: $*" >&2; exit 2; }
count() {  # 1000000, 1M, 50k -> integer
  local v=$1
  case "$v" in
    *[kK]) echo $(( ${v%?} * 1000 )) ;;
    *[mM]) echo $(( ${v%?} * 1000000 )) ;;
    *) [[ "$v" =~ ^[0-9]+$ ]] || die "not a count: $v"; echo "$v" ;;
  esac
}

N=1000000 HOLD=300 RATE=20000 WORKERS=0 PER_HOLDER=19500 CPU_WINDOW=30 MIN_AVAIL_MIB=2048
RAMP_TIMEOUT=0 KEEP_LOGS=0 NICE=0 PING_MS=30000 PONG_MS=10000 PING_BUDGET=0 REDIS=0 IO_URING=off
while [ $# -gt 0 ]; do
  case "$1" in
    --hold) HOLD=$(count "$2"); shift 2 ;;
    --rate) RATE=$(count "$2"); shift 2 ;;
    --workers) WORKERS=$(count "$2"); shift 2 ;;
    --per-holder) PER_HOLDER=$(count "$2"); shift 2 ;;
    --cpu-window) CPU_WINDOW=$(count "$2"); shift 2 ;;
    --min-available-mib) MIN_AVAIL_MIB=$(count "$2"); shift 2 ;;
    --ramp-timeout) RAMP_TIMEOUT=$(count "$2"); shift 2 ;;
    --keep-logs) KEEP_LOGS=1; shift ;;
    --redis) REDIS=1; shift ;;
    --io-uring) IO_URING=on; shift ;;
    --ping-interval) PING_MS=$(count "$2"); shift 2 ;;
    --pong-timeout) PONG_MS=$(count "$2"); shift 2 ;;
    --max-pings-per-second) PING_BUDGET=$(count "$2"); shift 2 ;;
    --nice) NICE=$2; [[ "$NICE" =~ ^-?[0-9]+$ ]] || die "--nice takes an integer"; shift 2 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) N=$(count "$1"); shift ;;
  esac
done
[ "$N" -ge 1 ] || die "N must be positive"
[ "$PER_HOLDER" -ge 1 ] && [ "$PER_HOLDER" -le 19500 ] || die "--per-holder must be 1..19500"
[ "$RATE" -ge 1 ] || die "--rate must be positive"
[ "$WORKERS" -ge 1 ] || WORKERS=$(( (N + 19499) / 19500 ))
HOLDERS=$(( (N + PER_HOLDER - 1) / PER_HOLDER ))
[ "$HOLDERS" -le 254 ] || die "at most 254 holders (127.<h+1>.0.0/16 each)"
[ "$RAMP_TIMEOUT" -ge 1 ] || RAMP_TIMEOUT=$(( N * 4 / RATE + 60 ))
[ "$CPU_WINDOW" -le "$HOLD" ] || CPU_WINDOW=$HOLD
[ "$PING_BUDGET" -gt 0 ] || PING_BUDGET=$(( 10000 * $(nproc) ))  # parleyd's automatic budget
WORKER_PING_BUDGET=$(( PING_BUDGET / WORKERS > 0 ? PING_BUDGET / WORKERS : 1 ))
for bin in parleyd parley-idle; do [ -x "$BUILD/$bin" ] || die "$BUILD/$bin is missing (make)"; done
if [ $REDIS -eq 1 ]; then
  [ -x "$BUILD/parley-load" ] || die "$BUILD/parley-load is missing (make)"
  for tool in redis-server redis-cli curl python3; do command -v $tool >/dev/null || die "--redis needs $tool"; done
fi
# Everything is bounded: processes die on their own after this many seconds.
LIFETIME=$(( RAMP_TIMEOUT + HOLD + 180 ))
CLK_TCK=$(getconf CLK_TCK)
LOGS=$(mktemp -d /tmp/parley-million.XXXXXX)

worker_pids=()   # parleyd pids (children of their timeout wrappers)
wrapper_pids=()  # timeout wrappers of workers
holder_pids=()   # timeout wrappers of holders (timeout forwards TERM to parley-idle)
saved_sysctls=() # "path=value" to restore
ok=0

now_s() { echo "$EPOCHREALTIME"; }
# calc, check, cpu_ticks, free_port, start_redis/stop_redis, json: bench/lib.sh.
since() { calc "$(now_s) - $1"; }
log() { printf '[%6.1fs] %s\n' "$(since "$T0")" "$*"; }

set_sysctl() {  # key value [only_if_greater]: remember the old value, write the new one
  local path=/proc/sys/${1//.//} value=$2 greater=${3:-}
  [ -w "$path" ] || { echo "  sysctl $1: not writable here, left as is"; return; }
  local old; old=$(cat "$path")
  if [ -n "$greater" ] && [ "$old" -ge "$value" ] 2>/dev/null; then return; fi
  if echo "$value" >"$path" 2>/dev/null; then
    saved_sysctls+=("$path=$old")
    echo "  sysctl $1: $(echo "$old" | tr '\t' ' ') -> $(echo "$value" | tr '\t' ' ')"
  else
    echo "  sysctl $1: could not set $value (kept $(echo "$old" | tr '\t' ' '))"
  fi
}

# The monitoring below runs every second next to ~100 busy processes, so it forks as little as
# possible: /proc is read with bash builtins, the holder logs with one tail and one awk.
# True while `pid` runs (a zombie child of ours counts as gone).
alive() {
  local line
  { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
  line=${line##*) }
  [ "${line%% *}" != Z ]
}

stop_group() {  # signal pids..., then wait up to 15 s for them, then SIGKILL the rest
  local p left
  [ $# -gt 0 ] || return 0
  for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 150); do
    left=0
    for p in "$@"; do alive "$p" && left=1; done
    [ $left -eq 0 ] && break
    sleep 0.1
  done
  for p in "$@"; do kill -KILL "$p" 2>/dev/null; done
  for p in "$@"; do wait "$p" 2>/dev/null; done
}

cleanup() {
  trap - EXIT INT TERM
  # Holders first: they close with a reset, so the workers are left with nothing to drain.
  stop_group "${holder_pids[@]}"
  stop_group "${worker_pids[@]}"
  stop_group "${wrapper_pids[@]}"
  stop_redis
  local entry
  for entry in "${saved_sysctls[@]}"; do echo "${entry#*=}" >"${entry%%=*}"; done
  [ ${#saved_sysctls[@]} -gt 0 ] && echo "sysctls restored"
  if [ $ok -eq 1 ] && [ $KEEP_LOGS -eq 0 ]; then rm -rf "$LOGS"; else echo "logs kept in $LOGS"; fi
}
trap cleanup EXIT
trap 'echo "million: interrupted"; exit 1' INT TERM

meminfo() {  # a /proc/meminfo field in KiB
  local k v rest
  while read -r k v rest; do [ "$k" = "$1:" ] && { echo "$v"; return; }; done </proc/meminfo
  echo 0
}
# Sums a /proc/PID/status field (KiB) over pids: VmRSS, or RssAnon (private heap and stack pages;
# RssFile, the rest, is mostly shared-library code mapped by every worker and counted in each).
status_kib() {
  local field=$1 sum=0 p k v rest
  shift
  for p in "$@"; do
    while read -r k v rest; do [ "$k" = "$field:" ] && { sum=$((sum + v)); break; }; done 2>/dev/null <"/proc/$p/status"
  done
  echo $sum
}
rss_kib() { status_kib VmRSS "$@"; }
child_pid() { pgrep -P "$1" 2>/dev/null | head -1; }
# Sets h_open h_pending h_failed h_lost h_reconnected h_pings h_attempts h_peak_open: sums over
# the newest complete status or summary line of every holder log.
holder_stats() {
  eval "$(tail -v -n 3 "$LOGS"/holder-*.log 2>/dev/null | awk '
    function commit(  n, i, f, kv) {
      n = split(line, f, " ")
      for (i = 1; i <= n; i++) if (split(f[i], kv, "=") == 2 && kv[2] ~ /^[0-9]+$/) sum[kv[1]] += kv[2]
      line = ""
    }
    /^==> / { commit(); next }
    /^t=.* phase=[a-z]+$/ || /^summary .* complete=[01]$/ { line = $0 }
    END {
      commit()
      printf "h_open=%d h_pending=%d h_failed=%d h_lost=%d h_reconnected=%d h_pings=%d h_attempts=%d h_peak_open=%d\n",
             sum["open"], sum["pending"], sum["failed"], sum["lost"], sum["reconnected"], sum["pings"],
             sum["attempts"], sum["peak_open"]
    }')"
}
workers_alive() { local p n=0; for p in "${worker_pids[@]}"; do alive "$p" && n=$((n + 1)); done; echo $n; }
holders_alive() { local p n=0; for p in "${holder_pids[@]}"; do alive "$p" && n=$((n + 1)); done; echo $n; }

T0=$(now_s)
echo "== parley million-connection test: N=$N, $WORKERS parleyd workers, $HOLDERS holders (<= $PER_HOLDER each),"
echo "   ramp at $RATE/s (timeout ${RAMP_TIMEOUT}s), hold ${HOLD}s, idle-CPU window ${CPU_WINDOW}s, niceness $NICE,"
echo "   parleyd heartbeat: ping every ${PING_MS} ms, pong deadline ${PONG_MS} ms, budget $PING_BUDGET pings/s"
echo "   ($WORKER_PING_BUDGET per worker); $(nproc) cores,"
echo "   $(( $(meminfo MemTotal) / 1024 )) MiB RAM, fd limit per process $(ulimit -Hn); logs in $LOGS"

echo "raising system limits:"
if [ "$(id -u)" -ne 0 ]; then
  echo "  not root: sysctls left as they are"
else
  set_sysctl net.ipv4.ip_local_port_range "1024	65535"
  set_sysctl net.core.somaxconn 65535 greater
  set_sysctl net.ipv4.tcp_max_syn_backlog 65535 greater
  # Loopback packets queue in the per-CPU backlog: a burst of SYNs must not be dropped there.
  set_sysctl net.core.netdev_max_backlog 65536 greater
  set_sysctl fs.file-max $(( 2 * N + 1000000 )) greater
  set_sysctl fs.nr_open 1048576 greater
  if [ -e /proc/sys/net/netfilter/nf_conntrack_max ]; then
    set_sysctl net.netfilter.nf_conntrack_max $(( N + N / 4 + 65536 )) greater
  fi
fi

# --- workers -------------------------------------------------------------------------------
mem_before_workers=$(( $(meminfo MemTotal) - $(meminfo MemAvailable) ))
chat_args=(--store none)  # without --redis: each worker its own chat, memory only
metrics_ports=()          # --redis: worker i's own /metrics port
if [ $REDIS -eq 1 ]; then
  SERVER_LIFETIME=$LIFETIME SERVER_PIN=()
  start_redis "$LOGS/redis" || { echo "million: redis-server did not start"; exit 1; }
  chat_args=(--redis "$REDIS_URL")
  for i in $(seq 0 $((WORKERS - 1))); do metrics_ports+=("$(free_port)"); done
  echo "redis-server (pid $REDIS_PID) on $REDIS_URL, appendonly yes, appendfsync ${REDIS_FSYNC:-everysec}"
fi
start_worker() {  # index listen-address
  local metrics=()
  [ $REDIS -eq 0 ] || metrics=(--metrics-listen "127.0.0.1:${metrics_ports[$1]}")
  nice -n "$NICE" timeout -s TERM "$LIFETIME" "$BUILD/parleyd" --listen "$2" --reuseport "${chat_args[@]}" "${metrics[@]}" \
    --ping-interval "$PING_MS" --pong-timeout "$PONG_MS" --max-pings-per-second "$WORKER_PING_BUDGET" \
    --io-uring "$IO_URING" >"$LOGS/worker-$1.log" 2>&1 &
  wrapper_pids+=("$!")
}
wait_listening() { parleyd_port "$LOGS/worker-$1.log" "${wrapper_pids[$1]}"; }  # index -> port, or nothing
start_worker 0 127.0.0.1:0
PORT=$(wait_listening 0)
[ -n "$PORT" ] || { echo "million: parleyd did not start:"; cat "$LOGS/worker-0.log"; exit 1; }
for i in $(seq 1 $((WORKERS - 1))); do start_worker "$i" "127.0.0.1:$PORT"; done
for i in $(seq 0 $((WORKERS - 1))); do
  [ -n "$(wait_listening "$i")" ] || { echo "million: worker $i did not start:"; cat "$LOGS/worker-$i.log"; exit 1; }
  p=$(child_pid "${wrapper_pids[$i]}")
  [ -n "$p" ] || { echo "million: cannot find worker $i's pid"; exit 1; }
  worker_pids+=("$p")
done
sleep 1
rss_workers_base=$(rss_kib "${worker_pids[@]}")
anon_workers_base=$(status_kib RssAnon "${worker_pids[@]}")
slab_base=$(meminfo Slab)
used_base=$(( $(meminfo MemTotal) - $(meminfo MemAvailable) ))
pagetables_base=$(meminfo PageTables)
log "$WORKERS workers listening on 127.0.0.1:$PORT; workers' RSS $((rss_workers_base / 1024)) MiB in total" \
    "($(( rss_workers_base / WORKERS )) KiB each); memory used $(( (used_base - mem_before_workers) / 1024 )) MiB more than before them"

# --- holders -------------------------------------------------------------------------------
per_rate=$(( (RATE + HOLDERS - 1) / HOLDERS ))
for h in $(seq 0 $((HOLDERS - 1))); do
  c=$(( N / HOLDERS + (h < N % HOLDERS ? 1 : 0) ))
  nice -n "$NICE" timeout -s TERM "$LIFETIME" "$BUILD/parley-idle" --url "ws://127.0.0.1:$PORT/echo" -c "$c" \
    --rate "$per_rate" --max-pending 256 --duration $(( HOLD + 120 )) --ramp-timeout "$RAMP_TIMEOUT" \
    --source-base "127.$((h + 1)).0.1" --sources 250 --report-interval 1 >"$LOGS/holder-$h.log" 2>&1 &
  holder_pids+=("$!")
done
log "$HOLDERS holders started ($per_rate connections/s each)"

# --- ramp ----------------------------------------------------------------------------------
ramp_start=$(now_s)
best=0 best_at=${ramp_start%.*} stop_reason="" next_print=0
# A few lost connections are reconnected and counted; a steady stream means parleyd is closing
# connections that miss the pong deadline (starved of CPU): stop instead of spiralling.
max_ramp_loss=$(( N / 100 > 100 ? N / 100 : 100 ))
while :; do
  sleep 1
  holder_stats
  open=$h_open
  now=${EPOCHREALTIME%.*}
  t=$(( now - ${ramp_start%.*} ))
  avail_mib=$(( $(meminfo MemAvailable) / 1024 ))
  if [ "$open" -gt "$best" ]; then best=$open; best_at=$now; fi
  if [ "$t" -ge "$next_print" ] || [ "$open" -ge "$N" ]; then
    next_print=$(( t + 5 ))
    log "ramp: open=$open pending=$h_pending failed=$h_failed lost=$h_lost reconnected=$h_reconnected" \
        "MemAvailable=${avail_mib} MiB load=$(cut -d' ' -f1 /proc/loadavg)"
  fi
  [ "$open" -ge "$N" ] && break
  if [ "$h_lost" -gt "$max_ramp_loss" ]; then
    stop_reason="$h_lost connections lost during the ramp (more than 1%): parleyd closed connections that missed the pong deadline? (load $(cut -d' ' -f1 /proc/loadavg))"
    break
  fi
  if [ "$avail_mib" -lt "$MIN_AVAIL_MIB" ]; then stop_reason="MemAvailable fell to ${avail_mib} MiB (limit $MIN_AVAIL_MIB)"; break; fi
  if [ "$(workers_alive)" -lt "$WORKERS" ]; then stop_reason="a parleyd worker exited"; break; fi
  if [ "$(holders_alive)" -lt "$HOLDERS" ]; then stop_reason="a holder exited"; break; fi
  if [ "$t" -gt "$RAMP_TIMEOUT" ]; then stop_reason="ramp timeout (${RAMP_TIMEOUT}s)"; break; fi
  if [ $(( now - best_at )) -gt 60 ]; then stop_reason="no progress for 60 s"; break; fi
done
ramp_s=$(since "$ramp_start")
holder_stats
held=$h_open
if [ -n "$stop_reason" ]; then
  log "ramp stopped at $held of $N connections (highest held: $best): $stop_reason; skipping the hold"
  HOLD=0  # holding a collapsing system would only load the shared machine for nothing
  for f in "$LOGS"/worker-*.log; do
    grep -Ev '^listening on|WARNING: any Origin' "$f" | tail -3 | sed "s|^|  $(basename "$f"): |"
  done
else
  log "ramp done: $held connections in $(calc "int($ramp_s * 10) / 10") s ($(calc "int($held / $ramp_s)") per second)"
fi

# --- hold ----------------------------------------------------------------------------------
sleep 2  # let the last upgrades settle before taking the memory snapshot
holder_stats
held=$h_open
rss_workers_held=$(rss_kib "${worker_pids[@]}")
anon_workers_held=$(status_kib RssAnon "${worker_pids[@]}")
holder_real_pids=()
for p in "${holder_pids[@]}"; do q=$(child_pid "$p"); [ -n "$q" ] && holder_real_pids+=("$q"); done
rss_holders_held=$(rss_kib "${holder_real_pids[@]}")
anon_holders_held=$(status_kib RssAnon "${holder_real_pids[@]}")
slab_held=$(meminfo Slab)
used_held=$(( $(meminfo MemTotal) - $(meminfo MemAvailable) ))
pagetables_held=$(meminfo PageTables)
sockstat=$(grep '^TCP:' /proc/net/sockstat)
fds=()
for p in "${worker_pids[@]}"; do fds+=("$(ls "/proc/$p/fd" 2>/dev/null | wc -l)"); done
fd_min=$(printf '%s\n' "${fds[@]}" | sort -n | head -1)
fd_max=$(printf '%s\n' "${fds[@]}" | sort -n | tail -1)
log "holding $held: workers' RSS $((rss_workers_held / 1024)) MiB, holders' RSS $((rss_holders_held / 1024)) MiB," \
    "fds per worker $fd_min..$fd_max; /proc/net/sockstat $sockstat"

hold_start=$(now_s)
holder_stats
pings_hold_start=$h_pings
lost_hold_start=$h_lost
# The idle-CPU window starts a minute into the hold (or as late as the hold allows), away from
# the ramp's tail; any 30 s window sees each connection pinged about once.
cpu_delay=$(( HOLD - CPU_WINDOW - 2 < 60 ? HOLD - CPU_WINDOW - 2 : 60 ))
[ "$cpu_delay" -ge 0 ] || cpu_delay=0
cpu_from="" cpu_workers=0 cpu_holders=0 cpu_redis=0 cpu_window_s="" machine_busy=""
next_print=15
while :; do
  t=$(since "$hold_start")
  if [ -z "$cpu_from" ] && check "$t >= $cpu_delay"; then
    cpu_from=$(now_s)
    cpu_w0=$(cpu_ticks "${worker_pids[@]}")
    cpu_h0=$(cpu_ticks "${holder_real_pids[@]}")
    cpu_r0=$(cpu_ticks ${REDIS_PID:-})
    read -r _ u n s idle iow irq sirq _ < /proc/stat
    busy0=$(( u + n + s + irq + sirq )); all0=$(( u + n + s + idle + iow + irq + sirq ))
  fi
  if [ -n "$cpu_from" ] && [ -z "$cpu_window_s" ] && check "$(since "$cpu_from") >= $CPU_WINDOW"; then
    cpu_workers=$(( $(cpu_ticks "${worker_pids[@]}") - cpu_w0 ))
    cpu_holders=$(( $(cpu_ticks "${holder_real_pids[@]}") - cpu_h0 ))
    cpu_redis=$(( $(cpu_ticks ${REDIS_PID:-}) - cpu_r0 ))
    cpu_window_s=$(since "$cpu_from")
    read -r _ u n s idle iow irq sirq _ < /proc/stat
    busy=$(( u + n + s + irq + sirq - busy0 )); all=$(( u + n + s + idle + iow + irq + sirq - all0 ))
    machine_busy=$(( all > 0 ? 100 * busy / all : 0 ))
    log "idle-CPU window of $(calc "int($cpu_window_s)") s: workers $cpu_workers ticks, holders $cpu_holders ticks" \
        "(${CLK_TCK}/s); whole machine ${machine_busy}% busy (all $(nproc) cores, everyone's work)"
  fi
  check "$t >= $HOLD" && break
  if check "$t >= $next_print"; then
    next_print=$(( next_print + 15 ))
    holder_stats
    log "hold: open=$h_open lost=$h_lost reconnected=$h_reconnected pings=$h_pings" \
        "MemAvailable=$(( $(meminfo MemAvailable) / 1024 )) MiB load=$(cut -d' ' -f1 /proc/loadavg)"
  fi
  if [ "$(( $(meminfo MemAvailable) / 1024 ))" -lt "$MIN_AVAIL_MIB" ]; then
    log "hold stopped early: MemAvailable below $MIN_AVAIL_MIB MiB"; break
  fi
  sleep 1
done
hold_s=$(since "$hold_start")
holder_stats
open_end=$h_open
pings_hold=$(( h_pings - pings_hold_start ))
lost_in_hold=$(( h_lost - lost_hold_start ))
alive_workers=$(workers_alive)

# --- --redis: one message reaches members on every worker ---------------------------------
# Each worker's own parley_chat_room_members (its --metrics-listen port), space-separated. The
# holders join no room, so during the check these are the probe's members on each worker.
# All workers are read at once (one curl each, in parallel): read one after another, 52 busy
# workers took longer than the probe, and a pass saw the first workers before anyone joined.
worker_members() {
  local i line out="" pids=() dir
  dir=$(mktemp -d)
  for i in "${!metrics_ports[@]}"; do
    curl -s --max-time 2 "http://127.0.0.1:${metrics_ports[$i]}/metrics" >"$dir/$i" 2>/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}" 2>/dev/null
  for i in "${!metrics_ports[@]}"; do
    line=$(grep '^parley_chat_room_members ' "$dir/$i")
    out="$out ${line##* }"
  done
  rm -rf "$dir"
  echo "${out# }"
}
cross="" cross_workers="" cross_ok=1
if [ $REDIS -eq 1 ]; then
  probe_subs=$(( 20 * WORKERS > 100 ? 20 * WORKERS : 100 ))
  [ "$probe_subs" -le 18995 ] || probe_subs=18995
  log "cross-node check: $probe_subs subscribers and 1 publisher in one room over $WORKERS workers, 10 msg/s for 1 s"
  # --warmup 3: every subscriber stays joined for 3 s before the messages, so the sampling below
  # sees each worker's members several times.
  timeout -s KILL 300 "$BUILD/parley-load" broadcast --url "ws://127.0.0.1:$PORT/chat" -c "$probe_subs" --rate 10 \
    --warmup 3 --duration 1 --quiet --json "$LOGS/cross.json" >"$LOGS/cross.log" 2>&1 &
  probe_pid=$!
  : >"$LOGS/cross-members.txt"
  while alive "$probe_pid"; do worker_members >>"$LOGS/cross-members.txt"; sleep 0.2; done
  wait "$probe_pid"
  probe_rc=$?
  # The most members each worker held at once (the room is the probe's only one).
  peak=$(awk '{ for (i = 1; i <= NF; i++) if ($i > m[i]) m[i] = $i; if (NF > n) n = NF }
              END { for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? " " : ""), m[i] }' "$LOGS/cross-members.txt")
  read -ra peaks <<<"$peak"
  thin=0 member_sum=0
  for m in "${peaks[@]}"; do
    member_sum=$(( member_sum + m ))
    [ "$m" -ge 2 ] || thin=$(( thin + 1 ))
  done
  got=$(json "$LOGS/cross.json" deliveries) expected=$(json "$LOGS/cross.json" deliveries_expected)
  published=$(json "$LOGS/cross.json" acked)
  joined=$(( ${expected:-0} / (${published:-0} > 0 ? published : 1) ))  # expected = acked x joined
  why=""
  [ "$probe_rc" -eq 0 ] || why="parley-load exited $probe_rc (see cross.log)"
  { [ -n "$got" ] && [ "${published:-0}" -gt 0 ] && [ "$got" = "$expected" ] && [ "$joined" = "$probe_subs" ]; } ||
    why="${why:+$why; }parley-load got ${got:-?} of ${expected:-?} deliveries, $joined of $probe_subs subscribers joined"
  [ ${#peaks[@]} -eq "$WORKERS" ] || why="${why:+$why; }read /metrics of ${#peaks[@]} of $WORKERS workers"
  # At least 2 members: at least one subscriber besides the publisher, wherever it sits.
  [ "$thin" -eq 0 ] || why="${why:+$why; }$thin of $WORKERS workers held no subscriber"
  [ -z "$why" ] || cross_ok=0
  cross="$( [ $cross_ok -eq 1 ] && echo PASS || echo "FAIL ($why)"): ${got:-?} of ${expected:-?} deliveries (${published:-?} msg x $joined subscribers);"
  cross_workers="room members per worker: $(IFS=/; echo "${peaks[*]}") (sum $member_sum: subscribers + publisher)"
  log "cross-node check: $cross $cross_workers"
  [ $cross_ok -eq 1 ] || sed 's/^/  cross.log: /' "$LOGS/cross.log" | tail -12
fi

# --- stop the holders and collect their summaries -----------------------------------------
stop_group "${holder_pids[@]}"
holder_pids=()
summaries=$(grep -h '^summary ' "$LOGS"/holder-*.log | wc -l)
holder_stats  # now from the summary lines
final_open=$h_open final_peak=$h_peak_open lost=$h_lost reconnected=$h_reconnected failed=$h_failed
pings=$h_pings attempts=$h_attempts
[ "$summaries" -eq "$HOLDERS" ] || echo "million: only $summaries of $HOLDERS holders printed a summary"

# --- results -------------------------------------------------------------------------------
per_conn() { [ "$held" -gt 0 ] && echo $(( $1 * 1024 / held )) || echo "n/a"; }  # KiB delta -> bytes
server_bytes=$(per_conn $(( rss_workers_held - rss_workers_base )))
server_anon_bytes=$(per_conn $(( anon_workers_held - anon_workers_base )))
slab_bytes=$(per_conn $(( slab_held - slab_base )))
used_bytes=$(per_conn $(( used_held - used_base )))
kernel_bytes=$(per_conn $(( used_held - used_base - (anon_workers_held - anon_workers_base) - anon_holders_held )))
pt_bytes=$(per_conn $(( pagetables_held - pagetables_base )))
if [ -n "$cpu_window_s" ]; then
  cpu_pct=$(calc "int(10000 * $cpu_workers / $CLK_TCK / $cpu_window_s) / 100")
  cpu_holders_pct=$(calc "int(10000 * $cpu_holders / $CLK_TCK / $cpu_window_s) / 100")
else
  cpu_pct="n/a" cpu_holders_pct="n/a"
fi
pings_rate="n/a "
check "$hold_s >= 1" && pings_rate=$(calc "int($pings_hold / $hold_s)")
# Memory is not given back when connections go (the connection table keeps its pages, malloc
# its arenas, slab its caches): after losses the per-connection figures divide a peak by less.
caveat=""
{ [ -n "$stop_reason" ] || [ "$lost" -gt 0 ]; } && caveat=" [unreliable: connections were lost before the snapshot]"
cpu_caveat=""
[ "$lost_in_hold" -gt 0 ] && cpu_caveat=" [not idle: connections were lost and reconnected in the hold]"

echo
echo "================ parley million-connection test: results ================"
row() { printf '%-45s %s\n' "$1" "$2"; }
row "connections asked for:" "$N ($WORKERS parleyd workers on 127.0.0.1:$PORT, $HOLDERS parley-idle holders)"
row "connections held (all open, start of hold):" "$held"
row "connections open at the end of the hold:" "$open_end (peak $final_peak)"
[ -n "$stop_reason" ] && row "could not reach N because:" "$stop_reason (highest held: $best)"
row "ramp:" "$(calc "int($ramp_s * 10) / 10") s; $attempts connection attempts, $failed failed (and retried)"
row "hold:" "$(calc "int($hold_s * 10) / 10") s, heartbeats on (a ping every $(calc "$PING_MS / 1000") s, pong deadline $(calc "$PONG_MS / 1000") s)"
row "connections lost (must be 0):" "$lost ($lost_in_hold during the hold); $reconnected reconnected"
row "pings answered by the holders (= pongs):" "$pings in total; $pings_hold during the hold ($pings_rate/s)"
# Workers log "parleyd: heartbeat budget: ... pinging every E ms" when they start stretching the
# ping period and "... back to one ping per P ms" when they stop.
read -r budget_stretched budget_back <<<"$(cat "$LOGS"/worker-*.log 2>/dev/null | awk '
  /heartbeat budget: .* pinging every/ { stretched++ }
  /heartbeat budget: .* back to/ { back++ }
  END { printf "%d %d\n", stretched, back }')"
if [ "$budget_stretched" -gt 0 ]; then
  row "heartbeat budget:" "ping period stretched $budget_stretched times, back $budget_back times; at $held held: a ping every ~$(calc "int($held / $WORKERS / $WORKER_PING_BUDGET)") s ($WORKER_PING_BUDGET/s per worker)"
else
  row "heartbeat budget:" "never stretched the ping period ($WORKER_PING_BUDGET pings/s per worker)"
fi
# Workers log "parleyd: admission paced: behind with N connections; accepting R/s" when they fall
# behind (late timers, deferred pong deadlines) and start pacing accepts,
# and "... caught up ..." when they stop.
read -r paced_started paced_stopped paced_workers <<<"$(awk '
  /admission paced: behind/ { started++; workers[FILENAME] = 1 }
  /admission paced: caught up/ { stopped++ }
  END { n = 0; for (f in workers) n++; printf "%d %d %d\n", started, stopped, n }' "$LOGS"/worker-*.log 2>/dev/null)"
if [ "$paced_started" -gt 0 ]; then
  row "admission pacing:" "started $paced_started times in $paced_workers of $WORKERS workers, stopped $paced_stopped times (accepts paced while a worker was behind)"
else
  row "admission pacing:" "never engaged (no worker fell behind)"
fi
row "server user-space memory per connection:" "$server_anon_bytes bytes private (RssAnon $((anon_workers_base / 1024)) -> $((anon_workers_held / 1024)) MiB; target < 100)$caveat;"
row "" "$server_bytes bytes by VmRSS ($((rss_workers_base / 1024)) -> $((rss_workers_held / 1024)) MiB), which adds the shared"
row "" "library pages the first handshakes fault in, counted once per worker"
row "kernel memory per connection (2 sockets):" "Slab +$slab_bytes bytes$caveat"
row "" "MemTotal-MemAvailable +$used_bytes bytes, of which not user-space RSS"
row "" "(workers' RssAnon growth + holders' RssAnon): $kernel_bytes bytes; page tables +$pt_bytes bytes"
row "" "(MemTotal-MemAvailable moves with everyone's work on this machine: noisy at small N)"
row "holder user-space memory:" "$((rss_holders_held / 1024)) MiB in total"
row "server CPU while idle:" "$cpu_pct% of one core, all $WORKERS workers, over $(calc "int(${cpu_window_s:-0})") s (target < 10%)$cpu_caveat"
row "holder CPU in the same window:" "$cpu_holders_pct% of one core (machine ${machine_busy:-?}% busy)"
row "parleyd workers alive at the end:" "$alive_workers of $WORKERS"
if [ $REDIS -eq 1 ]; then
  redis_pct="n/a"
  [ -z "$cpu_window_s" ] || redis_pct=$(calc "int(10000 * $cpu_redis / $CLK_TCK / $cpu_window_s) / 100")
  row "one chat over Redis (--redis):" "$REDIS_URL; redis-server CPU in the idle window $redis_pct% of one core"
  row "cross-node check (after the hold):" "$cross"
  row "" "$cross_workers"
fi
status=PASS
{ [ "$held" -ge "$N" ] && [ "$lost" -eq 0 ] && [ "$final_open" -ge "$N" ] && [ "$alive_workers" -eq "$WORKERS" ] &&
  [ "$summaries" -eq "$HOLDERS" ] && [ "$cross_ok" -eq 1 ]; } || status=FAIL
targets=""
[ "$server_anon_bytes" != "n/a" ] && [ "$server_anon_bytes" -ge 100 ] && targets="$targets user-space>=100B"
[ "$cpu_pct" != "n/a" ] && check "$cpu_pct >= 10" && targets="$targets idle-CPU>=10%"
echo "result: $status (held $held of $N, lost $lost)${targets:+; targets missed:$targets}"
echo "million summary n=$N held=$held open_end=$open_end lost=$lost reconnected=$reconnected failed=$failed" \
     "pings=$pings pings_hold=$pings_hold server_bytes_per_conn=$server_anon_bytes server_rss_bytes_per_conn=$server_bytes slab_bytes_per_conn=$slab_bytes" \
     "kernel_bytes_per_conn=$kernel_bytes idle_cpu_pct=$cpu_pct ramp_s=$(calc "int($ramp_s * 10) / 10")" \
     "hold_s=$(calc "int($hold_s * 10) / 10") ping_budget_per_worker=$WORKER_PING_BUDGET budget_stretches=$budget_stretched" \
     "pacing_started=$paced_started pacing_workers=$paced_workers" \
     "redis=$REDIS cross_node=$( [ $REDIS -eq 0 ] && echo n/a || { [ $cross_ok -eq 1 ] && echo pass || echo fail; })"
[ "$status" = PASS ] && ok=1
[ $ok -eq 1 ] && exit 0 || exit 1
