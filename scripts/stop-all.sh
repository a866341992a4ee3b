#!/usr/bin/env bash
# Stop every server the strata scripts started, by their PID files only.
source "$(dirname "$0")/lib.sh"
for f in "$PID_DIR"/*.pid; do [[ -e "$f" ]] && stop_pid "$(basename "$f" .pid)"; done
exit 0
