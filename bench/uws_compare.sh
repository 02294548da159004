#!/usr/bin/env bash
# parleyd and uWebSockets side by side (issue 18): bench/e2e.sh --compare against a uWS server
# (bench/compare/uws_chat.mjs: uWebSockets.js, i.e. uWS's C++ core with Node bindings, speaking
# the /echo and the hello/join/msg/ack /chat subset parley-load uses). uWebSockets.js comes from
# npm (the uws-pack package, which ships its prebuilt binaries) into a cache folder outside the
# repository, once; node and npm are installed from Debian when missing. uWS runs on core 0
# (taskset), as parleyd does, and its CPU is its whole process's (every thread) from /proc.
#
# usage: bash bench/uws_compare.sh [e2e.sh options: --quick, --duration S, --out DIR]
#   UWS_DIR      where uWebSockets.js is installed (default ~/.cache/parley/uws)
#   UWS_VERSION  the uws-pack version (default 20.0.8: uWebSockets.js v20, Node 18/20/21/22)
# What the uWS server's JS costs: one callback per message received (JSON.parse and the
# replies), none per delivery: the fan-out rows compare the two delivery paths, the echo rows
# carry one JS callback per echo that a C++ uWS server would not (docs/benchmarking.md).
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
UWS_DIR=${UWS_DIR:-$HOME/.cache/parley/uws}
UWS_VERSION=${UWS_VERSION:-20.0.8}
module="$UWS_DIR/node_modules/uws-pack/dist/index.mjs"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "uws_compare: installing nodejs and npm (apt)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; } >/dev/null ||
    { echo "uws_compare: could not install nodejs/npm" >&2; exit 2; }
fi
if [ ! -f "$module" ] || ! grep -q "\"version\": \"$UWS_VERSION\"" "$UWS_DIR/node_modules/uws-pack/package.json" 2>/dev/null; then
  echo "uws_compare: installing uws-pack@$UWS_VERSION into $UWS_DIR (npm)" >&2
  mkdir -p "$UWS_DIR" && npm install --silent --no-audit --no-fund --prefix "$UWS_DIR" "uws-pack@$UWS_VERSION" >&2 ||
    { echo "uws_compare: npm install uws-pack@$UWS_VERSION failed" >&2; exit 2; }
fi

pick_pinning one
port=$(free_port) || { echo "uws_compare: no free port" >&2; exit 2; }
log=$(mktemp)
UWS_MODULE="$module" timeout -k 10 7200 "${SERVER_PIN[@]}" node bench/compare/uws_chat.mjs "$port" >"$log" 2>&1 &
wrapper=$!
trap 'stop_pids $(child_pids "$wrapper") "$wrapper"; rm -f "$log"' EXIT
for _ in $(seq 100); do
  grep -q "^listening $port" "$log" && break
  kill -0 "$wrapper" 2>/dev/null || break
  sleep 0.1
done
grep -q "^listening $port" "$log" || { echo "uws_compare: the uWS server did not start: $(tail -3 "$log")" >&2; exit 1; }
uws_pid=$(pgrep -P "$wrapper" -n)
echo "uws_compare: uWebSockets.js (uws-pack $UWS_VERSION, node $(node --version)) on 127.0.0.1:$port, pid $uws_pid" >&2
bash bench/e2e.sh --compare "ws://127.0.0.1:$port" --compare-pid "$uws_pid" "$@"
