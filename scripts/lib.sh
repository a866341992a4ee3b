# shellcheck shell=bash
# Shared settings for strata's own environment scripts. Source it; every variable can be
# overridden from the environment.
#
#   STRATA_STATE     state root: registry storage, certs, base image contexts, logs, PIDs
#   REG_HTTP_ADDR    plain-HTTP registry              (default 127.0.0.1:5000)
#   REG_TLS_ADDR     TLS + basic-auth registry         (default 127.0.0.1:5443)
#   MOTO_ADDR        moto_server (ECR + STS emulator)  (default 127.0.0.1:5005)
#   REG_USER/REG_PASS  the TLS registry's one htpasswd entry; the default is exactly what moto's
#                    ECR GetAuthorizationToken decodes to for its default account.

set -euo pipefail

: "${STRATA_STATE:=/tmp/strata-env}"
: "${REG_HTTP_ADDR:=127.0.0.1:5000}"
: "${REG_TLS_ADDR:=127.0.0.1:5443}"
: "${MOTO_ADDR:=127.0.0.1:5005}"
: "${REG_USER:=AWS}"
: "${REG_PASS:=123456789012-auth-token}"
: "${REG_EXTRA_SANS:=DNS:*.dkr.ecr.us-east-1.amazonaws.com,DNS:*.dkr.ecr.us-west-2.amazonaws.com,DNS:*.dkr.ecr.eu-west-1.amazonaws.com}"
: "${STRATA_VENV:=$STRATA_STATE/venv}"

STRATA_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PID_DIR="$STRATA_STATE/pids"
LOG_DIR="$STRATA_STATE/logs"
CERT_DIR="$STRATA_STATE/certs"     # only ca.crt: usable as skopeo/buildah --cert-dir
PKI_DIR="$STRATA_STATE/pki"        # keys live here, never in CERT_DIR
export STRATA_STATE STRATA_REPO REG_HTTP_ADDR REG_TLS_ADDR MOTO_ADDR REG_USER REG_PASS \
       REG_EXTRA_SANS STRATA_VENV PID_DIR LOG_DIR CERT_DIR PKI_DIR
mkdir -p "$STRATA_STATE" "$PID_DIR" "$LOG_DIR"

log() { printf '[strata-env %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# pid_alive NAME: the PID in NAME.pid is alive and still runs the program we started.
pid_alive() {
  local f="$PID_DIR/$1.pid" pid want
  [[ -s "$f" ]] || return 1
  pid="$(cat "$f")"
  kill -0 "$pid" 2>/dev/null || return 1
  want="$(cat "$PID_DIR/$1.cmd" 2>/dev/null || true)"
  [[ -z "$want" ]] || tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$want"
}

# start_bg NAME CMD...: start CMD detached in its own session, with a PID file (idempotent).
start_bg() {
  local name="$1"; shift
  if pid_alive "$name"; then
    log "$name already running (pid $(cat "$PID_DIR/$name.pid"))"
    return 0
  fi
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 < /dev/null &
  echo $! > "$PID_DIR/$name.pid"
  echo "$1" > "$PID_DIR/$name.cmd"
  log "started $name pid $! (log $LOG_DIR/$name.log)"
}

# stop_pid NAME: SIGTERM the recorded PID if it is still ours, SIGKILL after 5 s.
stop_pid() {
  local f="$PID_DIR/$1.pid" pid
  [[ -s "$f" ]] || { rm -f "$f" "$PID_DIR/$1.cmd"; return 0; }
  pid="$(cat "$f")"
  if pid_alive "$1"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    log "stopped $1 (pid $pid)"
  fi
  rm -f "$f" "$PID_DIR/$1.cmd"
}

# wait_http URL [curl args...]: wait up to 20 s for any HTTP answer.
wait_http() {
  local url="$1"; shift
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "$@" "$url" && return 0
    sleep 0.2
  done
  log "timeout waiting for $url"; return 1
}

# strata_bin: path of the strata binary, built (dev profile, optimised deps) if missing or stale.
strata_bin() {
  (cd "$STRATA_REPO" && cargo build -q -p strata-cli >&2)
  echo "$STRATA_REPO/target/debug/strata"
}

# fresh_volume DIR: mounts a new, empty ext4 file system (an 8 GiB sparse image next to DIR) at
# DIR, as a new pod gets an empty volume. Benchmarks give every build one: on a reused
# directory each build would pay for the previous one's deletions, because ext4 allocates
# inodes slowly where many were deleted in the last minutes.
fresh_volume() {
  mkdir -p "$1"
  truncate -s 8G "$1.img"
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$1.img"
  mount -o loop "$1.img" "$1"
}

# release_volumes PREFIX: unmounts everything mounted below PREFIX and deletes the images.
release_volumes() {
  local m
  for m in $(awk -v p="$1" 'index($2, p) == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  find "$1" -maxdepth 1 -name '*.img' -delete 2>/dev/null || true
}

# app_context DIR: the benchmarks' app on the Debian base in DIR (made once, the Dockerfile always
# rewritten): 200 small files + a 20 MiB incompressible file, COPY, two small RUNs, a RUN that
# writes 50 MiB, USER and CMD. bench-build.sh and bench-limits.sh build it.
app_context() {
  local ctx="$1" d i
  if [[ ! -s "$ctx/big.bin" ]]; then
    rm -rf "$ctx"; mkdir -p "$ctx"
    for d in a b c d; do mkdir -p "$ctx/src/$d"; for i in $(seq 1 50); do printf 'file %s/%s\n' "$d" "$i" > "$ctx/src/$d/f$i.txt"; done; done
    head -c 20M /dev/zero | openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass pass:strata 2>/dev/null > "$ctx/big.bin"
  fi
  cat > "$ctx/Dockerfile" <<EOD
FROM $REG_HTTP_ADDR/library/debian:bookworm
ARG GREETING=hello
ENV APP_HOME=/app
WORKDIR /app
COPY . /app/src
RUN echo "\$GREETING" > /app/greeting && ls -la /app > /app/listing
RUN mkdir -p /opt/data && dd if=/dev/urandom of=/opt/data/blob bs=1M count=50 2>/dev/null && rm -f /etc/motd
USER 1000
CMD ["cat", "/app/greeting"]
EOD
}
