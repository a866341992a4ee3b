#!/usr/bin/env bash
# End-to-end layer-cache benchmark on the Debian base, in one run: what `--cache` costs on a
# cold build, and what it saves on the next CI run, which starts in a new pod with an empty
# work dir and finds the entries in the cache repository of the local registry.
#   cold        strata, no --cache
#   cold+cache  strata --cache (keys computed, entries pushed)
#   new pod     strata --cache, empty work dir, nothing changed
#   app change  strata --cache, empty work dir, only the app's source changed (deps layer hits)
#   buildah     buildah bud --layers (vfs), second build on the same machine, app changed
# ROUNDS (default 3): the median is reported. Needs root.
source "$(dirname "$0")/lib.sh"
ROUNDS="${ROUNDS:-3}"
"$STRATA_REPO/scripts/install.sh"
"$STRATA_REPO/scripts/registry-up.sh"
STRATA="$(cd "$STRATA_REPO" && cargo build -q --release -p strata-cli >&2 && echo "$STRATA_REPO/target/release/strata")"
B="$STRATA_STATE/bench-cache/run-$$"; mkdir -p "$B"
# Every build gets a new empty volume (fresh_volume in lib.sh), as a pod does.
trap 'release_volumes "$B/"' EXIT
STRATA="$STRATA" "$STRATA_REPO/scripts/base-debian.sh"

CTX="$B/ctx"; mkdir -p "$CTX/deps" "$CTX/app"
for i in $(seq 1 100); do echo "dependency $i" > "$CTX/deps/d$i.txt"; done
echo "app v1" > "$CTX/app/main.txt"
# The "dependency install", the slow part of real builds: 5 s of waiting (standing for the
# package download, which no machine here can do), then 20k files and 40 MiB written by shell.
cat > "$CTX/Dockerfile" <<EOD
FROM $REG_HTTP_ADDR/library/debian:bookworm
COPY deps /deps
RUN sleep 5 && mkdir -p /opt/deps && i=0; while [ \$i -lt 20000 ]; do echo "\$i" > /opt/deps/f\$i; i=\$((i+1)); done \
 && dd if=/dev/urandom of=/opt/deps/blob bs=1M count=40 2>/dev/null
COPY app /app
RUN cat /app/main.txt > /app/built
EOD

measure() {  # LABEL CMD...
  local label="$1"; shift
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>>"$LOG_DIR/bench-cache.log" || { log "$label failed (see $LOG_DIR/bench-cache.log)"; return 1; }
  t1=$(date +%s%N)
  printf '%s %s\n' "$label" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')" >> "$B/results"
}
strata_build() {  # WORK TAG [flags...]; WORK is a new pod's empty volume
  local work="$1" tag="$2"; shift 2
  fresh_volume "$work"
  "$STRATA" build -v warn --context "$CTX" --insecure-registry "$REG_HTTP_ADDR" \
    --destination "$REG_HTTP_ADDR/bench/cache-app:$tag" --work-dir "$work" "$@"
}
: > "$B/results"
for round in $(seq 1 "$ROUNDS"); do
  repo="$REG_HTTP_ADDR/bench/cache-$round-$$"
  R="$B/round-$round"; mkdir -p "$R"
  echo "app v1" > "$CTX/app/main.txt"
  measure cold strata_build "$R/w-cold" cold
  measure cold+cache strata_build "$R/w1" c1 --cache --cache-repo "$repo"
  measure new-pod strata_build "$R/w2" c2 --cache --cache-repo "$repo"
  echo "app v2 round $round" > "$CTX/app/main.txt"
  measure app-change strata_build "$R/w3" c3 --cache --cache-repo "$repo"
  root="$R/buildah"; fresh_volume "$root"
  echo "app v1" > "$CTX/app/main.txt"
  bb() { buildah --storage-driver vfs --root "$root/root" --runroot "$root/run" bud --isolation chroot -q --layers -t bench-cache -f "$CTX/Dockerfile" "$CTX"; }
  bb >/dev/null 2>>"$LOG_DIR/bench-cache.log"
  echo "app v2 round $round" > "$CTX/app/main.txt"
  measure buildah-layers-app-change bb
  release_volumes "$R/"
  log "round $round done"
done
median() { grep "^$1 " "$B/results" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
C=$(median cold); CC=$(median cold+cache); N=$(median new-pod); A=$(median app-change); BL=$(median buildah-layers-app-change)
echo "layer cache, Debian base, build+push, median of $ROUNDS (wall seconds):"
printf '  cold, no cache                  %6.2f s\n' "$C"
printf '  cold, --cache (entries pushed)  %6.2f s  ratio to cold %.2f\n' "$CC" "$(echo "$CC/$C" | bc -l)"
printf '  new pod, nothing changed        %6.2f s  ratio to cold %.2f\n' "$N" "$(echo "$N/$C" | bc -l)"
printf '  new pod, app source changed     %6.2f s  ratio to cold %.2f\n' "$A" "$(echo "$A/$C" | bc -l)"
printf '  buildah --layers, same machine, app source changed (no push) %6.2f s\n' "$BL"
rm -rf "$STRATA_STATE/bench-cache"
