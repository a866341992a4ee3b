#!/usr/bin/env bash
# Start a private dockerd (Debian's docker.io, BuildKit inside) as the second oracle, on loopback
# only (idempotent; PID file in $PID_DIR, log in $LOG_DIR/dockerd.log):
#   socket     $STRATA_STATE/docker/docker.sock  (export STRATA_TEST_DOCKER_HOST from env.sh)
#   data root  $STRATA_STATE/docker/root, exec root $STRATA_STATE/docker/exec
# No iptables rules, no bridge: builds run with `--network host`. The plain-HTTP registry
# ($REG_HTTP_ADDR) is marked insecure so `FROM $REG_HTTP_ADDR/...` pulls from it.
# DOCKER_BIN names the client (default /usr/bin/docker, the one docker.io ships).
source "$(dirname "$0")/lib.sh"
: "${DOCKER_BIN:=$(command -v /usr/bin/docker || command -v docker || true)}"
command -v dockerd >/dev/null || "$STRATA_REPO/scripts/install.sh"
D="$STRATA_STATE/docker"
SOCK="$D/docker.sock"
mkdir -p "$D/root" "$D/exec"
start_bg dockerd dockerd --data-root "$D/root" --exec-root "$D/exec" --pidfile "$D/dockerd.pid" \
  --host "unix://$SOCK" --iptables=false --ip6tables=false --bridge=none --ip-masq=false \
  --insecure-registry "$REG_HTTP_ADDR" --userland-proxy=false
for _ in $(seq 1 150); do
  "$DOCKER_BIN" -H "unix://$SOCK" version >/dev/null 2>&1 && break
  pid_alive dockerd || { log "dockerd exited (see $LOG_DIR/dockerd.log)"; tail -5 "$LOG_DIR/dockerd.log" >&2; exit 1; }
  sleep 0.2
done
"$DOCKER_BIN" -H "unix://$SOCK" version >/dev/null 2>&1 || { log "timeout waiting for dockerd on $SOCK"; exit 1; }
log "dockerd up: unix://$SOCK (BuildKit: DOCKER_BUILDKIT=1 $DOCKER_BIN -H unix://$SOCK build --network host)"
