#!/usr/bin/env bash
# Make a Debian bookworm base image and push it to the plain registry as library/debian:bookworm:
# debootstrap --variant=minbase (cached in $STRATA_STATE/debian-ctx; FORCE=1 redoes it), the
# official image's clean-up, then packaged by strata itself (FROM scratch + COPY).
# Needs root (debootstrap) and registry-up.sh. MIRROR defaults to the first URI in apt's sources.
source "$(dirname "$0")/lib.sh"
STRATA="${STRATA:-$(strata_bin)}"
command -v debootstrap >/dev/null || "$STRATA_REPO/scripts/install.sh"
[[ "${FORCE:-0}" == 1 ]] && rm -rf "$STRATA_STATE/debian-ctx"
# ---- Debian base: debootstrap minbase, official-image-style cleanup, packaged by strata ----
B="$STRATA_STATE"
ROOTFS="$B/debian-ctx/rootfs"
if [[ ! -e "$B/debian-ctx/.complete" ]]; then
  rm -rf "$B/debian-ctx"; mkdir -p "$B/debian-ctx"
  MIRROR="${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}"
  [[ -n "$MIRROR" ]] || MIRROR="$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list)"
  log "debootstrap --variant=minbase bookworm from $MIRROR"
  debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" > "$LOG_DIR/debootstrap.log" 2>&1
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/lib/apt/lists/* \
         "${ROOTFS:?}"/dev/* "$ROOTFS"/var/log/*.log "$ROOTFS"/var/log/apt/* "$ROOTFS"/debootstrap
  mkdir -p "$ROOTFS/var/lib/apt/lists/partial"
  : > "$ROOTFS/etc/machine-id"; : > "$ROOTFS/etc/resolv.conf"; : > "$ROOTFS/etc/hostname"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOTFS/etc/hosts"
  printf 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nCMD ["bash"]\n' > "$B/debian-ctx/Dockerfile"
  touch "$B/debian-ctx/.complete"
fi
printf '.complete\n' > "$B/debian-ctx/.dockerignore"
"$STRATA" build -v warn --context "$B/debian-ctx" --insecure-registry "$REG_HTTP_ADDR" \
  --destination "$REG_HTTP_ADDR/library/debian:bookworm" --work-dir "$STRATA_STATE/debian-work" >/dev/null

log "Debian base pushed to $REG_HTTP_ADDR/library/debian:bookworm"
