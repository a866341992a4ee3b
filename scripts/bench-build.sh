#!/usr/bin/env bash
# End-to-end build+push benchmark on a Debian bookworm base, strata against buildah (vfs and
# overlay storage, --layers=false), cold, in the same run; prints wall times, ratios and peak RSS.
#   ROUNDS (default 3): runs per builder; the median is reported.
# Needs root (buildah overlay). Makes the Debian base with debootstrap (cached) and strata itself.
source "$(dirname "$0")/lib.sh"
ROUNDS="${ROUNDS:-3}"
"$STRATA_REPO/scripts/install.sh"
"$STRATA_REPO/scripts/registry-up.sh"
STRATA="$(cd "$STRATA_REPO" && cargo build -q --release -p strata-cli >&2 && echo "$STRATA_REPO/target/release/strata")"
B="$STRATA_STATE/bench"; mkdir -p "$B"
# Every build gets a new empty volume (fresh_volume in lib.sh), as a pod does.
SCR="$B/run-$$"; mkdir -p "$SCR"
trap 'release_volumes "$SCR/"' EXIT

STRATA="$STRATA" "$STRATA_REPO/scripts/base-debian.sh"

# ---- the app (app_context in lib.sh): 200 small files + 20 MiB incompressible file, RUNs that
# write 50 MiB and delete ----
CTX="$B/app-ctx"
app_context "$CTX"

measure() {  # LABEL CMD... -> "wall_s rss_kb" appended to $B/results
  local label="$1"; shift
  local tf; tf="$(mktemp)"
  local t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -v -o "$tf" "$@" >/dev/null 2>>"$LOG_DIR/bench-build.log" || { log "$label failed (see $LOG_DIR/bench-build.log)"; rm -f "$tf"; return 1; }
  t1=$(date +%s%N)
  printf '%s %s %s\n' "$label" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')" \
    "$(awk -F': ' '/Maximum resident set size/{print $2}' "$tf")" >> "$B/results"
  rm -f "$tf"
}
wipe_buildah() {
  local root="$1"
  buildah --root "$root/root" --runroot "$root/run" rmi -a -f >/dev/null 2>&1 || true
  for m in $(awk -v p="$root/" 'index($2, p) == 1 {print $2}' /proc/self/mounts | sort -r); do umount "$m" 2>/dev/null || true; done
}
: > "$B/results"
for round in $(seq 1 "$ROUNDS"); do
  fresh_volume "$SCR/strata-work-$round"
  measure strata "$STRATA" build -v warn --context "$CTX" --insecure-registry "$REG_HTTP_ADDR" \
    --destination "$REG_HTTP_ADDR/bench/app-strata:latest" --work-dir "$SCR/strata-work-$round"
  for driver in vfs overlay; do
    root="$SCR/buildah-$driver-$round"; fresh_volume "$root"
    measure "buildah-$driver" bash -c "buildah --storage-driver $driver --root $root/root --runroot $root/run bud --isolation chroot -q --layers=false -t bench-app -f $CTX/Dockerfile $CTX && buildah --storage-driver $driver --root $root/root --runroot $root/run push -q bench-app docker://$REG_HTTP_ADDR/bench/app-buildah-$driver:latest"
    wipe_buildah "$root"
  done
  release_volumes "$SCR/"
  log "round $round done"
done
median() { grep "^$1 " "$B/results" | awk '{print $'"$2"'}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
S=$(median strata 2); V=$(median buildah-vfs 2); O=$(median buildah-overlay 2)
echo "build+push, Debian base, cold, median of $ROUNDS (wall seconds):"
printf '  strata          %6.2f s  peak RSS %6.1f MiB\n' "$S" "$(echo "$(median strata 3)/1024" | bc -l)"
printf '  buildah vfs     %6.2f s  peak RSS %6.1f MiB\n' "$V" "$(echo "$(median buildah-vfs 3)/1024" | bc -l)"
printf '  buildah overlay %6.2f s  peak RSS %6.1f MiB\n' "$O" "$(echo "$(median buildah-overlay 3)/1024" | bc -l)"
printf '  ratio strata/buildah-vfs     %.2f (target <= 0.5)\n' "$(echo "$S/$V" | bc -l)"
printf '  ratio strata/buildah-overlay %.2f (target <= 1.0)\n' "$(echo "$S/$O" | bc -l)"
