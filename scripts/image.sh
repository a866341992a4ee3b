#!/usr/bin/env bash
# Builds strata's own container image, the drop-in for the kaniko-ecr plugin image, with strata
# itself (FROM scratch, COPY only), and pushes it to the local registry.
#   IMAGE         where to push (default $REG_HTTP_ADDR/strata/strata:latest)
#   STRATA        the binary to package for this machine's architecture (default: a release
#                 build of this checkout); it also runs the build
#   STRATA_AMD64, STRATA_ARM64
#                 one binary per architecture: the image is an index of one image per binary
#                 given (linux/amd64, linux/arm64), each rootfs with its own binary and the
#                 shared libraries that binary needs (a foreign binary's from its architecture's
#                 multiarch directories, /usr/lib/aarch64-linux-gnu after
#                 `dpkg --add-architecture arm64 && apt-get install libc6:arm64`, or $SYSROOT_ARM64)
# Layout as kaniko's: /kaniko/strata (with the shared libraries it needs at their paths),
# /kaniko/ssl/certs/ca-certificates.crt, DOCKER_CONFIG=/kaniko/.docker, work dir /kaniko/work,
# ENTRYPOINT /kaniko/strata (with PLUGIN_* settings and no arguments it runs in plugin mode),
# and /kaniko/executor, which takes kaniko's executor command line.
source "$(dirname "$0")/lib.sh"
die() { log "error: $*"; exit 1; }
"$STRATA_REPO/scripts/install.sh"
"$STRATA_REPO/scripts/registry-up.sh"
case "$(uname -m)" in x86_64) HOST_ARCH=amd64 ;; aarch64) HOST_ARCH=arm64 ;; *) HOST_ARCH="$(uname -m)" ;; esac
host_binary_var="STRATA_${HOST_ARCH^^}"
# The binary that runs the build: STRATA, else this machine's STRATA_<ARCH>, else a release build.
STRATA="${STRATA:-${!host_binary_var:-}}"
STRATA="${STRATA:-$(cd "$STRATA_REPO" && cargo build -q --release -p strata-cli >&2 && echo "$STRATA_REPO/target/release/strata")}"
IMAGE="${IMAGE:-$REG_HTTP_ADDR/strata/strata:latest}"
# arch=binary for every architecture packaged; only STRATA (as before): this machine's.
declare -A BINARIES=()
[[ -n "${STRATA_AMD64:-}" ]] && BINARIES[amd64]="$STRATA_AMD64"
[[ -n "${STRATA_ARM64:-}" ]] && BINARIES[arm64]="$STRATA_ARM64"
((${#BINARIES[@]})) || BINARIES[$HOST_ARCH]="$STRATA"
CTX="$STRATA_STATE/image-ctx-$$"
rm -rf "$CTX"; mkdir -p "$CTX"
trap 'rm -rf "$CTX"' EXIT

# ELF machine of a binary, as a Docker architecture name.
elf_arch() {
  case "$(readelf -h "$1" 2>/dev/null | sed -n 's/^ *Machine: *//p')" in
    *X86-64*) echo amd64 ;;
    *AArch64*) echo arm64 ;;
    *) echo unknown ;;
  esac
}

# The shared libraries (and the dynamic loader) binary $1 for $2 needs, one path a line.
needed_libs() {
  local bin="$1" arch="$2"
  if ! readelf -d "$bin" 2>/dev/null | grep -q '(NEEDED)'; then
    return 0 # static
  fi
  if [[ "$arch" == "$HOST_ARCH" ]]; then
    ldd "$bin" | grep -o '/[^ ]*'
    return 0
  fi
  # A foreign binary cannot be run (ldd would run it): its loader and NEEDED entries are
  # looked up in that architecture's multiarch directories.
  local triple root
  case "$arch" in arm64) triple=aarch64-linux-gnu; root="${SYSROOT_ARM64:-}" ;; amd64) triple=x86_64-linux-gnu; root="${SYSROOT_AMD64:-}" ;; esac
  local interp
  interp="$(readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')"
  [[ -n "$interp" ]] && { [[ -e "$root$interp" ]] || die "$bin ($arch): its loader $root$interp is missing (apt-get install libc6:$arch, or set SYSROOT_${arch^^})"; echo "$interp"; }
  local lib found d
  for lib in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    found=""
    for d in "/lib/$triple" "/usr/lib/$triple" /lib /usr/lib; do
      if [[ -e "$root$d/$lib" ]]; then found="$d/$lib"; break; fi
    done
    [[ -n "$found" ]] || die "$bin ($arch): $lib is not in $root/usr/lib/$triple (apt-get install libc6:$arch, or set SYSROOT_${arch^^})"
    echo "$found"
  done
}

# The rootfs of the image for $1 (an architecture) with binary $2.
make_rootfs() {
  local arch="$1" bin="$2" R="$CTX/rootfs-$1" root=""
  [[ -f "$bin" ]] || die "STRATA_${arch^^}=$bin: no such file"
  local got; got="$(elf_arch "$bin")"
  [[ "$got" == "$arch" ]] || die "STRATA_${arch^^}=$bin is an ELF binary for $got, not $arch"
  [[ "$arch" != "$HOST_ARCH" ]] && { [[ "$arch" == arm64 ]] && root="${SYSROOT_ARM64:-}"; [[ "$arch" == amd64 ]] && root="${SYSROOT_AMD64:-}"; }
  mkdir -p "$R"/{kaniko/ssl/certs,kaniko/.docker,workspace,root,tmp,etc,proc,sys,dev,var/run}
  chmod 1777 "$R/tmp"; chmod 700 "$R/root"
  install -m 0755 "$bin" "$R/kaniko/strata"
  # kaniko's own entry point: jobs written for /kaniko/executor run unchanged.
  ln -s strata "$R/kaniko/executor"
  local lib
  for lib in $(needed_libs "$bin" "$arch"); do
    install -D -m 0755 "$root$lib" "$R$lib"
  done
  cp /etc/ssl/certs/ca-certificates.crt "$R/kaniko/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/kaniko/strata\n' > "$R/etc/passwd"
  printf 'root:x:0:\n' > "$R/etc/group"
  : > "$R/etc/hosts"; : > "$R/etc/resolv.conf"
}

PLATFORMS=()
for arch in amd64 arm64 "$HOST_ARCH"; do
  [[ -n "${BINARIES[$arch]:-}" && ! -d "$CTX/rootfs-$arch" ]] || continue
  make_rootfs "$arch" "${BINARIES[$arch]}"
  PLATFORMS+=("linux/$arch")
done
cat > "$CTX/Dockerfile" <<'EOD'
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
ENV PATH=/kaniko \
    HOME=/root \
    SSL_CERT_FILE=/kaniko/ssl/certs/ca-certificates.crt \
    DOCKER_CONFIG=/kaniko/.docker \
    STRATA_WORK_DIR=/kaniko/work
WORKDIR /workspace
ENTRYPOINT ["/kaniko/strata"]
EOD
PLATFORM_LIST="$(IFS=,; echo "${PLATFORMS[*]}")"
"$STRATA" build --context "$CTX" --dockerfile "$CTX/Dockerfile" --reproducible --custom-platform "$PLATFORM_LIST" \
  --insecure-registry "$REG_HTTP_ADDR" --destination "$IMAGE" --label "org.opencontainers.image.title=strata"
log "strata image for $PLATFORM_LIST pushed as $IMAGE"
