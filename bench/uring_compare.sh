#!/bin/bash
# One measured round of parleyd under parley-load, for the io_uring send path (issue 18):
# syscalls per message (perf stat on the syscall tracepoints, exact), parleyd's CPU per message
# (utime+stime from /proc/PID/stat, noisy on a shared machine: alternate rounds, take medians),
# and messages per loop iteration. parleyd is pinned to CPU 0, the load to CPU 1.
#
#   bench/uring_compare.sh echo on|off CONNECTIONS [SECONDS]
#   bench/uring_compare.sh broadcast on|off SUBSCRIBERS RATE [SECONDS]
#
# Prints one line: scenario, io_uring, messages, syscalls/msg by name, CPU us/msg (user, sys).
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=$1 uring=$2 n=$3
if [[ $scenario == broadcast ]]; then rate=$4 seconds=${5:-10}; else seconds=${4:-10}; fi
port=$((20000 + RANDOM % 20000))
taskset -c 0 build/parleyd --listen 127.0.0.1:$port --store none --ping-interval 0 $( [[ $uring == base ]] || echo --io-uring $uring ) \
  --max-connections-per-ip 0 --max-handshakes-per-ip 0 --rate-limit 0 --max-room-members 0 \
  >/tmp/uring_compare_parleyd.$port.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf 127.0.0.1:$port/healthz >/dev/null 2>&1 && break; sleep 0.1; done
warmup=3
if [[ $scenario == echo ]]; then
  load=(echo --url ws://127.0.0.1:$port/echo -c "$n" --pipeline 1)
else
  load=(broadcast --url ws://127.0.0.1:$port/chat -c "$n" --rate "$rate")
fi
taskset -c 1 build/parley-load "${load[@]}" --warmup $warmup --duration $((seconds + 2)) \
  >/tmp/uring_compare_load.$port.log 2>&1 &
load_pid=$!
# Wait until the load is in its measured phase (the ramp of 10k connections takes a while).
for _ in $(seq 600); do grep -qE "msg/s|deliveries/s" /tmp/uring_compare_load.$port.log 2>/dev/null && break; sleep 0.1; done
sleep $warmup
metric() { curl -s 127.0.0.1:$port/metrics | awk -v m="$1" '$1 == m { print $2 }'; }
cpu() { awk '{ print $14, $15 }' /proc/$pid/stat; }
read -r u0 s0 < <(cpu)
m0=$(metric parley_messages_sent_total)
i0=$(metric parley_loop_iterations_total)
events='syscalls:sys_enter_epoll_wait,syscalls:sys_enter_read,syscalls:sys_enter_writev,syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendto,syscalls:sys_enter_io_uring_enter,raw_syscalls:sys_enter'
perf stat -x, -e "$events" -p $pid -- sleep "$seconds" 2>/tmp/uring_compare_perf.$port.txt
read -r u1 s1 < <(cpu)
m1=$(metric parley_messages_sent_total)
i1=$(metric parley_loop_iterations_total)
wait $load_pid || true
msgs=$((m1 - m0))
tick=$(getconf CLK_TCK)
awk -F, -v msgs=$msgs -v sc="$scenario" -v ur="$uring" -v n="$n" -v it=$((i1 - i0)) \
    -v us=$(( (u1 - u0) * 1000000 / tick )) -v ss=$(( (s1 - s0) * 1000000 / tick )) '
  { split($3, p, ":"); name = p[2]; sub("sys_enter_", "", name); count[name] = $1 }
  END {
    printf "%s io_uring=%s n=%s msgs=%d msg/iter=%.1f", sc, ur, n, msgs, msgs / (it ? it : 1)
    for (k in count) if (count[k] > 0) printf " %s/msg=%.3f", k, count[k] / msgs
    printf " cpu_us/msg=%.3f (user %.3f sys %.3f)\n", (us + ss) / msgs, us / msgs, ss / msgs
  }' /tmp/uring_compare_perf.$port.txt
