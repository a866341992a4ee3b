#!/usr/bin/env bash
# Install what strata's tests and demo need on Debian 12, as root (idempotent):
# Debian packages, and a Python venv with moto (the ECR/STS emulator) when WITH_MOTO=1.
# docker.io is the second oracle: its dockerd (20.10) builds with BuildKit (scripts/dockerd-up.sh).
# pigz and zstd are the compression peers of scripts/bench-limits.sh.
source "$(dirname "$0")/lib.sh"

PKGS=(docker-registry skopeo umoci buildah docker.io busybox-static debootstrap apache2-utils
      openssl jq curl uidmap time ca-certificates python3-venv passwd bc qemu-user-static pigz zstd)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || { log "missing packages ${missing[*]}: run as root"; exit 1; }
  log "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ "${WITH_MOTO:-0}" == 1 && ! -x "$STRATA_VENV/bin/moto_server" ]]; then
  log "creating venv $STRATA_VENV with moto[server]"
  python3 -m venv "$STRATA_VENV"
  "$STRATA_VENV/bin/pip" install -q 'moto[server]'
fi

# buildah and skopeo read registries.conf: mark the plain-HTTP registry insecure.
mkdir -p /etc/containers/registries.conf.d
cat > "/etc/containers/registries.conf.d/50-strata-${REG_HTTP_ADDR//[:.]/-}.conf" <<EOC
# written by strata scripts/install.sh
[[registry]]
location = "$REG_HTTP_ADDR"
insecure = true
EOC
if [[ ! -e /etc/containers/policy.json ]]; then
  echo '{"default":[{"type":"insecureAcceptAnything"}]}' > /etc/containers/policy.json
fi
# RUN for a foreign architecture runs under qemu-user-static through binfmt_misc. In a container
# without systemd nothing registers the handlers: mount binfmt_misc if it can be, and register
# arm64 and arm with the fix-binary flag (the interpreter is opened now, so it works in a chroot).
register_binfmt() {
  local bm=/proc/sys/fs/binfmt_misc name conf line
  [[ -w "$bm/register" ]] || mount -t binfmt_misc binfmt_misc "$bm" 2>/dev/null || true
  if [[ ! -w "$bm/register" ]]; then
    log "binfmt_misc is not available here: RUN for other architectures will fail with a message naming qemu-user-static"
    return 0
  fi
  for name in aarch64 arm; do
    conf="/usr/lib/binfmt.d/qemu-$name.conf"
    [[ -e "$bm/qemu-$name" || ! -r "$conf" || ! -x "/usr/bin/qemu-$name-static" ]] && continue
    # Debian's line names a wrapper that preserves argv[0]; the static binary itself is enough.
    line="$(sed -E "s#:[^:]*:[A-Z]*\$#:/usr/bin/qemu-$name-static:F#" "$conf")"
    if printf '%s' "$line" > "$bm/register" 2>/dev/null; then log "registered qemu-$name with binfmt_misc"; else log "cannot register qemu-$name with binfmt_misc"; fi
  done
}
[[ $(id -u) == 0 ]] && register_binfmt
log "packages ready"
