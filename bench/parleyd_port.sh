# Sourced by the bench scripts: the port a parleyd started with --listen 127.0.0.1:0 announced
# ("listening on 127.0.0.1:PORT" on its stdout), read from the file its output goes to.
# parleyd_port LOG PID: prints the port; fails (prints nothing) when PID exits or after 10 s.
parleyd_port() {
  local log=$1 pid=$2 port
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$log" | head -1)
    [ -n "$port" ] && { echo "$port"; return 0; }
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
