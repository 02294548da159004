#!/usr/bin/env bash
# Measures parleyd's user-space memory per idle, upgraded WebSocket connection: RSS growth from
# BASE to TOTAL connections held by idle clients in other processes, divided by the difference.
# Also the private memory (RssAnon) when just started, at BASE and at TOTAL: what a worker
# allocates once with its first connections (pooled buffers) stands apart from the per-connection
# slope, which is what separates this figure from million.sh's (start -> all held, over 52
# workers). Bounded in time; cleans up after itself.
#   bench/idle_memory.sh [TOTAL] [BASE]         ws://, held by parley-idle (defaults 19000 1000)
#   bench/idle_memory.sh --tls [TOTAL] [BASE]   wss://, self-signed pair made with the openssl
#       CLI, held by a small Python ssl client (defaults 10000 1000); parleyd runs with
#       --ping-interval 0 there, since that client does not answer pings.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/parleyd_port.sh
BUILD=${PARLEY_BUILD_DIR:-build}
TLS=0
if [ "${1:-}" = "--tls" ]; then TLS=1; shift; fi
if [ "$TLS" = 1 ]; then TOTAL=${1:-10000}; else TOTAL=${1:-19000}; fi
BASE=${2:-1000}
pids=()
work=$(mktemp -d)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

server_args=(--listen 127.0.0.1:0 --store none)
scheme=http
if [ "$TLS" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  # The Python holder connects from 127.0.0.1 alone: lift the per-address cap (default 1000).
  server_args+=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --ping-interval 0 --max-connections-per-ip 0)
  scheme=https
fi
out="$work/parleyd.out"
"$BUILD/parleyd" "${server_args[@]}" >"$out" 2>&1 &
server=$!
pids+=("$server")
port=$(parleyd_port "$out" "$server") || true
[ -n "$port" ] || { echo "parleyd did not start"; cat "$out"; exit 1; }

connections() { curl -sk "$scheme://127.0.0.1:$port/metrics" | awk '$1=="parley_connections"{print $2}'; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$server/status"; }
anon_kib() { awk '/^RssAnon:/{print $2}' "/proc/$server/status"; }
wait_for() {
  local want=$1
  for _ in $(seq 1200); do
    local have; have=$(connections)
    # /metrics itself is one connection while it is being served.
    [ "${have:-0}" -ge $((want + 1)) ] && return 0
    sleep 0.1
  done
  echo "timed out waiting for $want connections (have $(connections))"; exit 1
}

# Opens COUNT wss:// connections to /echo (TLS handshake + upgrade each), then holds them.
cat >"$work/hold_wss.py" <<'PY'
import socket, ssl, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
request = (b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
held = []
for _ in range(count):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.sendall(request)
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head[:100]
    held.append(s)
time.sleep(600)
PY

hold() {
  local count=$1
  if [ "$TLS" = 1 ]; then
    python3 "$work/hold_wss.py" "$port" "$count" &
  else
    "$BUILD/parley-idle" --url "ws://127.0.0.1:$port/echo" -c "$count" --rate 20000 --duration 120 >/dev/null &
  fi
  pids+=("$!")
}

wait_for 0
anon_start=$(anon_kib)
hold "$BASE"
wait_for "$BASE"
sleep 1
rss_base=$(rss_kib) anon_base=$(anon_kib)
hold $((TOTAL - BASE))
wait_for "$TOTAL"
sleep 1
rss_total=$(rss_kib) anon_total=$(anon_kib)
per=$(( (rss_total - rss_base) * 1024 / (TOTAL - BASE) ))
per_anon=$(( (anon_total - anon_base) * 1024 / (TOTAL - BASE) ))
# What the first BASE connections cost beyond BASE times the slope: allocated once per process.
once=$(( anon_base - anon_start - BASE * per_anon / 1024 ))
echo "idle $([ "$TLS" = 1 ] && echo wss || echo ws) connections: $BASE -> $TOTAL"
echo "parleyd RSS: ${rss_base} KiB -> ${rss_total} KiB"
echo "parleyd RssAnon: ${anon_start} KiB just started -> ${anon_base} KiB -> ${anon_total} KiB"
echo "user-space bytes per idle upgraded connection: $per (RssAnon: $per_anon)"
echo "allocated once, with the first connections: ${once} KiB of RssAnon per process"
