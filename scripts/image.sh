#!/usr/bin/env bash
# Builds strata's own container image, the drop-in for the kaniko-ecr plugin image, with strata
# itself (FROM scratch, COPY only), and pushes it to the local registry.
#   IMAGE   where to push (default $REG_HTTP_ADDR/strata/strata:latest)
#   STRATA  the binary to package (default: a release build of this checkout)
# Layout as kaniko's: /kaniko/strata (with the shared libraries it needs at their paths),
# /kaniko/ssl/certs/ca-certificates.crt, DOCKER_CONFIG=/kaniko/.docker, work dir /kaniko/work,
# ENTRYPOINT /kaniko/strata (with PLUGIN_* settings and no arguments it runs in plugin mode),
# and /kaniko/executor, which takes kaniko's executor command line.
source "$(dirname "$0")/lib.sh"
"$STRATA_REPO/scripts/install.sh"
"$STRATA_REPO/scripts/registry-up.sh"
STRATA="${STRATA:-$(cd "$STRATA_REPO" && cargo build -q --release -p strata-cli >&2 && echo "$STRATA_REPO/target/release/strata")}"
IMAGE="${IMAGE:-$REG_HTTP_ADDR/strata/strata:latest}"
CTX="$STRATA_STATE/image-ctx-$$"
rm -rf "$CTX"; mkdir -p "$CTX/rootfs"
R="$CTX/rootfs"
mkdir -p "$R"/{kaniko/ssl/certs,kaniko/.docker,workspace,root,tmp,etc,proc,sys,dev,var/run}
chmod 1777 "$R/tmp"; chmod 700 "$R/root"
install -m 0755 "$STRATA" "$R/kaniko/strata"
# kaniko's own entry point: jobs written for /kaniko/executor run unchanged.
ln -s strata "$R/kaniko/executor"
for lib in $(ldd "$STRATA" | grep -o '/[^ ]*'); do
  install -D -m 0755 "$lib" "$R$lib"
done
cp /etc/ssl/certs/ca-certificates.crt "$R/kaniko/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/kaniko/strata\n' > "$R/etc/passwd"
printf 'root:x:0:\n' > "$R/etc/group"
: > "$R/etc/hosts"; : > "$R/etc/resolv.conf"
cat > "$CTX/Dockerfile" <<'EOD'
FROM scratch
COPY rootfs/ /
ENV PATH=/kaniko \
    HOME=/root \
    SSL_CERT_FILE=/kaniko/ssl/certs/ca-certificates.crt \
    DOCKER_CONFIG=/kaniko/.docker \
    STRATA_WORK_DIR=/kaniko/work
WORKDIR /workspace
ENTRYPOINT ["/kaniko/strata"]
EOD
"$STRATA" build --context "$CTX" --dockerfile "$CTX/Dockerfile" --reproducible \
  --insecure-registry "$REG_HTTP_ADDR" --destination "$IMAGE" --label "org.opencontainers.image.title=strata"
rm -rf "$CTX"
log "strata image pushed as $IMAGE"
