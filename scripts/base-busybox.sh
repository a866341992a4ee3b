#!/usr/bin/env bash
# Make the busybox base image with strata itself (FROM scratch + COPY + RUN) and push it to
# both local registries as library/busybox:latest. Needs registry-up.sh to have run.
#   rootfs: /bin/busybox and one relative symlink per applet, /etc/passwd with root and
#   uid 1000, /etc/group, /etc/hosts, /tmp and /var/tmp 1777, /home/user owned by 1000.
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
