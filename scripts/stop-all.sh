#!/usr/bin/env bash
# Stop every server the strata scripts started, by their PID files only.
source "$(dirname "$0")/lib.sh"
# dockerd first, given time to stop its containerd and unmount (stop_pid waits 5 s only).
if pid_alive dockerd; then
  kill "$(cat "$PID_DIR/dockerd.pid")" 2>/dev/null || true
  for _ in $(seq 1 150); do pid_alive dockerd || break; sleep 0.1; done
  stop_pid dockerd
fi
for f in "$PID_DIR"/*.pid; do [[ -e "$f" ]] && stop_pid "$(basename "$f" .pid)"; done
exit 0
