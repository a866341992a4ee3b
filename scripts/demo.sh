#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine as root: install what is missing, start the
# local registries, make the busybox base with strata, build examples/hello with strata,
# push it, then pull it back with skopeo, unpack it with umoci, and run the image's
# ENTRYPOINT+CMD as the image's user inside the unpacked rootfs.
source "$(dirname "$0")/lib.sh"
"$STRATA_REPO/scripts/install.sh"
"$STRATA_REPO/scripts/registry-up.sh"
STRATA="$(strata_bin)"; export STRATA
"$STRATA_REPO/scripts/base-busybox.sh"

IMAGE="$REG_HTTP_ADDR/examples/hello:latest"
log "building examples/hello -> $IMAGE"
DIGEST=$("$STRATA" build --context "$STRATA_REPO/examples/hello" --dockerfile "$STRATA_REPO/examples/hello/Dockerfile" \
  --insecure-registry "$REG_HTTP_ADDR" --destination "$IMAGE" --build-arg GREETING=hello)
log "pushed $IMAGE@$DIGEST"

OUT="$STRATA_STATE/demo"; rm -rf "$OUT"; mkdir -p "$OUT"
skopeo copy -q --src-tls-verify=false "docker://$IMAGE" "oci:$OUT/layout:hello"
umoci unpack --image "$OUT/layout:hello" "$OUT/bundle" >/dev/null
CONFIG="$OUT/bundle/config.json"   # the OCI runtime spec umoci derives from the image config
mapfile -t ARGV < <(jq -r '.process.args[]' "$CONFIG")
USERSPEC="$(jq -r '"\(.process.user.uid):\(.process.user.gid)"' "$CONFIG")"
CWD="$(jq -r '.process.cwd' "$CONFIG")"
log "running ${ARGV[*]} as $USERSPEC in $CWD inside the pulled image"
RESULT=$(cd "$OUT/bundle/rootfs" && env -i PATH=/bin:/usr/bin "$(command -v chroot)" --userspec="$USERSPEC" . /bin/sh -c 'cd "$0" && exec "$@"' "$CWD" "${ARGV[@]}")
echo "$RESULT"
[[ "$RESULT" == "hello from strata" ]] || { log "unexpected output: $RESULT"; exit 1; }
log "OK: $IMAGE@$DIGEST runs and prints: $RESULT"
