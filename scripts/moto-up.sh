#!/usr/bin/env bash
# Start moto_server (the AWS API emulator: ECR GetAuthorizationToken/CreateRepository, STS
# AssumeRole) on $MOTO_ADDR (default 127.0.0.1:5005) in the background, PID file in $PID_DIR.
# Creates the venv $STRATA_VENV with moto[server] on first use (pip). Idempotent.
# moto's ECR token for account 123456789012 decodes to AWS:123456789012-auth-token, which is the
# htpasswd entry scripts/registry-up.sh gives the TLS registry.
source "$(dirname "$0")/lib.sh"

if [[ ! -x "$STRATA_VENV/bin/moto_server" ]]; then
  if [[ -x /tmp/motovenv/bin/moto_server && -z "${STRATA_FRESH_VENV:-}" ]]; then
    STRATA_VENV=/tmp/motovenv   # a ready-made venv on the development machines
  else
    log "creating venv $STRATA_VENV with moto[server]"
    python3 -m venv "$STRATA_VENV"
    "$STRATA_VENV/bin/pip" install -q 'moto[server]'
  fi
fi
start_bg moto "$STRATA_VENV/bin/moto_server" -H "${MOTO_ADDR%:*}" -p "${MOTO_ADDR##*:}"
wait_http "http://$MOTO_ADDR/moto-api/"
log "moto up on http://$MOTO_ADDR (AWS_ENDPOINT_URL=http://$MOTO_ADDR)"
