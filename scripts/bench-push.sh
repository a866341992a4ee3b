#!/usr/bin/env bash
# Push benchmark: strata's registry client against `skopeo copy` of the same OCI layout, in the
# same run, to a docker-registry started here with a fresh storage for every push.
#   - a 5-layer image of BENCH_MB (default 500) MB: gzip layers of random data (real gzip, so
#     skopeo pushes them as they are instead of compressing them on the way)
#   - RUNS (default 2) pushes each, alternating; the best of each is compared (target <= 1.1x)
#   - then a re-push of the unchanged image by strata: HEAD requests counted in the registry's
#     access log (target: HEADs and the manifest only) and timed (target < 0.2 s)
# Uses BENCH_REG_ADDR (default 127.0.0.1:5110) and $STRATA_STATE/bench-push; stops what it starts.
source "$(dirname "$0")/lib.sh"

: "${BENCH_MB:=500}" "${RUNS:=2}" "${BENCH_REG_ADDR:=127.0.0.1:5110}"
WORK="$STRATA_STATE/bench-push"
LAYOUT="$WORK/layout"
mkdir -p "$WORK"
command -v skopeo >/dev/null || { log "skopeo missing: run scripts/install.sh"; exit 1; }

log "building the push driver (release)"
(cd "$STRATA_REPO" && cargo build -q --release -p strata-registry --example push_oci_layout)
PUSH="$STRATA_REPO/target/release/examples/push_oci_layout"

# --- the image: 5 layers of random bytes, config, manifest, index.json ---
if [[ ! -s "$LAYOUT/index.json" || "$(cat "$WORK/mb" 2>/dev/null)" != "$BENCH_MB-gz" ]]; then
  log "writing a ${BENCH_MB} MB 5-layer OCI layout in $LAYOUT"
  rm -rf "$LAYOUT"; mkdir -p "$LAYOUT/blobs/sha256"
  per=$((BENCH_MB * 1024 * 1024 / 5)); layers=(); diffs=()
  for i in 1 2 3 4 5; do
    f="$LAYOUT/blobs/tmp$i"
    { openssl enc -aes-128-ctr -nosalt -pass "pass:strata-bench-$i" -in /dev/zero 2>/dev/null || true; } \
      | head -c "$per" | gzip -1 -n > "$f"
    size=$(stat -c %s "$f")
    d=$(sha256sum "$f" | cut -d' ' -f1); mv "$f" "$LAYOUT/blobs/sha256/$d"
    layers+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$size}")
    diffs+=("\"sha256:$(gzip -dc "$LAYOUT/blobs/sha256/$d" | sha256sum | cut -d' ' -f1)\"")
  done
  cfg="{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$(IFS=,; echo "${diffs[*]}")]}}"
  printf '%s' "$cfg" > "$LAYOUT/blobs/tmpc"; cd_=$(sha256sum "$LAYOUT/blobs/tmpc" | cut -d' ' -f1)
  mv "$LAYOUT/blobs/tmpc" "$LAYOUT/blobs/sha256/$cd_"
  man="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cd_\",\"size\":${#cfg}},\"layers\":[$(IFS=,; echo "${layers[*]}")]}"
  printf '%s' "$man" > "$LAYOUT/blobs/tmpm"; md=$(sha256sum "$LAYOUT/blobs/tmpm" | cut -d' ' -f1)
  mv "$LAYOUT/blobs/tmpm" "$LAYOUT/blobs/sha256/$md"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' "$md" "${#man}" > "$LAYOUT/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$LAYOUT/oci-layout"
  echo "$BENCH_MB-gz" > "$WORK/mb"
fi
cat "$LAYOUT"/blobs/sha256/* > /dev/null   # both tools read from the page cache

# --- a registry with an access log, restarted on an empty storage before every push ---
REG_LOG="$LOG_DIR/bench-reg.log"
cat > "$WORK/reg.yml" <<EOC
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $WORK/storage}
http: {addr: $BENCH_REG_ADDR, secret: strata-bench}
EOC
fresh_registry() {
  stop_pid bench-reg
  rm -rf "$WORK/storage"; mkdir -p "$WORK/storage"
  start_bg bench-reg /usr/bin/docker-registry serve "$WORK/reg.yml"
  wait_http "http://$BENCH_REG_ADDR/v2/"
}
trap 'stop_pid bench-reg' EXIT

now() { date +%s.%N; }
want=$(jq -r '.manifests[0].digest' "$LAYOUT/index.json")
best_s=""; best_t=""
for run in $(seq 1 "$RUNS"); do
  for tool in skopeo strata; do
    [[ $((run % 2)) == 0 ]] && tool=$([[ $tool == skopeo ]] && echo strata || echo skopeo)
    fresh_registry
    t0=$(now)
    if [[ $tool == skopeo ]]; then
      skopeo copy -q --dest-tls-verify=false "oci:$LAYOUT:bench" "docker://$BENCH_REG_ADDR/bench/skopeo:r$run" >/dev/null
    else
      "$PUSH" "$LAYOUT" "$BENCH_REG_ADDR/bench/strata:r$run" --insecure >/dev/null
    fi
    dt=$(echo "$(now) - $t0" | bc)
    # Both tools must push the same manifest (no recompression on the way).
    got=$(skopeo inspect --raw --tls-verify=false "docker://$BENCH_REG_ADDR/bench/$tool:r$run" | sha256sum | cut -d' ' -f1)
    [[ "sha256:$got" == "$want" ]] || { log "$tool pushed manifest sha256:$got, the layout has $want"; exit 1; }
    printf 'run %d %-6s %6.2f s\n' "$run" "$tool" "$dt"
    if [[ $tool == skopeo ]]; then
      [[ -z "$best_s" || $(echo "$dt < $best_s" | bc) == 1 ]] && best_s=$dt
    else
      [[ -z "$best_t" || $(echo "$dt < $best_t" | bc) == 1 ]] && best_t=$dt
    fi
  done
done

# --- unchanged re-push, HEADs counted in the registry's access log ---
"$PUSH" "$LAYOUT" "$BENCH_REG_ADDR/bench/strata:first" --insecure >/dev/null
before=$(grep -c '"HEAD /v2/' "$REG_LOG" || true); before_all=$(grep -c '"[A-Z]* /v2/' "$REG_LOG" || true)
t0=$(now)
out=$("$PUSH" "$LAYOUT" "$BENCH_REG_ADDR/bench/strata:again" --insecure)
re_wall=$(echo "$(now) - $t0" | bc)
sleep 0.2
heads=$(( $(grep -c '"HEAD /v2/' "$REG_LOG" || true) - before ))
reqs=$(( $(grep -c '"[A-Z]* /v2/' "$REG_LOG" || true) - before_all ))

echo
printf 'push %d MB, 5 layers, best of %d: skopeo %.2f s, strata %.2f s, ratio strata/skopeo %.2f (target <= 1.10)\n' \
  "$BENCH_MB" "$RUNS" "$best_s" "$best_t" "$(echo "$best_t / $best_s" | bc -l)"
printf 're-push unchanged: %s; %d requests to /v2/ of which %d HEAD; process wall %.3f s (target < 0.2 s)\n' \
  "$(echo "$out" | cut -d' ' -f2-)" "$reqs" "$heads" "$re_wall"
