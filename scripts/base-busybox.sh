#!/usr/bin/env bash
# Make the busybox base image with strata itself (FROM scratch + COPY + RUN) and push it to
# both local registries as library/busybox:latest. Needs registry-up.sh to have run.
#   rootfs: /bin/busybox and one relative symlink per applet, /etc/passwd with root and
#   uid 1000, /etc/group, /etc/hosts, /tmp and /var/tmp 1777, /home/user owned by 1000.
# Then library/busybox-multi:latest, an index of that base for linux/amd64 and linux/arm64 (the
# arm64 busybox from Debian's busybox-static:arm64, fetched with apt after
# `dpkg --add-architecture arm64`), built by strata in one multi-platform build.
source "$(dirname "$0")/lib.sh"
STRATA="${STRATA:-$(strata_bin)}"
CTX="$STRATA_STATE/base-busybox"
rm -rf "$CTX"; mkdir -p "$CTX/rootfs"
R="$CTX/rootfs"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,root,home/user,tmp,var/tmp,proc,sys,dev,run}
chmod 1777 "$R/tmp" "$R/var/tmp"; chmod 700 "$R/root"
install -m 0755 /bin/busybox "$R/bin/busybox"
for a in $(/bin/busybox --list); do [[ "$a" == busybox ]] || ln -sf busybox "$R/bin/$a"; done
cat > "$R/etc/passwd" <<'EOP'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOP
printf 'root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n' > "$R/etc/group"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' > "$R/etc/hosts"
echo "busybox test image" > "$R/etc/motd"
: > "$R/etc/resolv.conf"; echo busybox > "$R/etc/hostname"
cat > "$CTX/Dockerfile" <<'EOD'
FROM scratch
COPY rootfs/ /
RUN chown 1000:1000 /home/user
ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin
CMD ["/bin/sh"]
EOD
export DOCKER_CONFIG="$STRATA_STATE/docker-config"
mkdir -p "$DOCKER_CONFIG"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REG_TLS_ADDR" "$(printf '%s:%s' "$REG_USER" "$REG_PASS" | base64 -w0)" > "$DOCKER_CONFIG/config.json"
"$STRATA" build --context "$CTX" --dockerfile "$CTX/Dockerfile" --reproducible \
  --insecure-registry "$REG_HTTP_ADDR" --registry-certificate "$REG_TLS_ADDR=$CERT_DIR/ca.crt" \
  --destination "$REG_HTTP_ADDR/library/busybox:latest" \
  --destination "$REG_TLS_ADDR/library/busybox:latest" \
  --oci-layout-path "$STRATA_STATE/oci/busybox"
log "busybox base pushed to $REG_HTTP_ADDR and $REG_TLS_ADDR as library/busybox:latest"

# The multi-platform base: the same tree with the arm64 busybox for linux/arm64.
DEBS="$STRATA_STATE/debs"; mkdir -p "$DEBS"
arm_deb() { ls "$DEBS"/busybox-static_*_arm64.deb 2>/dev/null | head -1; }
if [[ -z "$(arm_deb)" ]]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  (cd "$DEBS" && apt-get download -qq busybox-static:arm64 >/dev/null 2>&1) \
    || { apt-get update -qq >/dev/null 2>&1; (cd "$DEBS" && apt-get download -qq busybox-static:arm64 >/dev/null 2>&1); } || true
fi
if [[ -z "$(arm_deb)" ]]; then
  log "WARNING: no busybox-static:arm64 from apt; library/busybox-multi is not made (the multi-platform base tests will be SKIPPED)"
  exit 0
fi
M="$STRATA_STATE/base-busybox-multi"; rm -rf "$M"; mkdir -p "$M"
cp -a "$R" "$M/rootfs-amd64"; cp -a "$R" "$M/rootfs-arm64"
dpkg-deb -x "$(arm_deb)" "$M/arm64-deb"
install -m 0755 "$M/arm64-deb/bin/busybox" "$M/rootfs-arm64/bin/busybox"; rm -rf "$M/arm64-deb"
cat > "$M/Dockerfile" <<'EOD'
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin
CMD ["/bin/sh"]
EOD
"$STRATA" build --context "$M" --dockerfile "$M/Dockerfile" --reproducible --custom-platform linux/amd64,linux/arm64 \
  --insecure-registry "$REG_HTTP_ADDR" --registry-certificate "$REG_TLS_ADDR=$CERT_DIR/ca.crt" \
  --destination "$REG_HTTP_ADDR/library/busybox-multi:latest" \
  --destination "$REG_TLS_ADDR/library/busybox-multi:latest"
log "busybox base for linux/amd64 and linux/arm64 pushed as library/busybox-multi:latest (an index)"
