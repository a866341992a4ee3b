#!/usr/bin/env bash
# strata under Harness's default step limits (400m CPU, 500Mi memory) and without limits, in one
# run (issue 14). Every measured command runs alone in a new child cgroup (v2, or v1 when v2 has no
# cpu/memory controllers), limited to cpu quota 40000/100000 and 500 MiB ("limited") or not
# ("unlimited"); the cgroup gives its CPU seconds (v2 cpu.stat, v1 cpuacct) and its peak memory
# (v2 memory.peak, v1 memory.max_usage_in_bytes: both count page cache), /usr/bin/time the peak
# RSS of the largest process. Every strata build gets a fresh ext4 work volume (fresh_volume).
# Workloads (WORKLOADS, default all four):
#   app       bench-build.sh's app on the Debian base: COPY 200 files + 20 MiB, RUN writing 50 MiB
#   small     RUN writing 100k small files (kaniko's benchmark_fs: "Hello world" in /workdir)
#   large     RUN writing 1.5 GiB in 20 files (odd ones random, even ones text) + COPY of 300 MiB
#   compress  a tar of 200 MiB random + 200 MiB text through `gzip -6`, `pigz -6`, `zstd -3`,
#             against strata's COPY of the same files (FROM scratch) with gzip and with zstd
# "Text" is the Debian base's own text (perl modules, dpkg metadata, docs; gzip -6 makes it 24%)
# concatenated and repeated; "random" is AES-CTR output (host) or /dev/urandom (in a RUN).
# For small and large, the RUN's shell command alone (no builder, same cgroup) is measured too.
# Settings (environment):
#   SCALE (1)            sizes and file counts of small, large and compress (0.05 for a quick check)
#   WORKLOADS, MODES     subsets ("app small large compress", "limited unlimited")
#   CPU_MAX, MEM_MAX     the limits ("40000 100000", 500M); CGROUP=v1|v2 forces a hierarchy
#   KANIKO               a kaniko executor binary: its builds run too, each chrooted into a fresh
#                        volume with the context bind-mounted at /workspace (kaniko rewrites the
#                        root it runs in); KANIKO_FLAGS (--snapshot-mode=redo) are added
#   STRATA_FLAGS         added to every strata build (e.g. "--compression-level 6")
# Run it while nothing else builds: flock /tmp/strata-cargo.lock bash scripts/bench-limits.sh
# Needs root, the plain registry (scripts/registry-up.sh) and strata's release build.
source "$(dirname "$0")/lib.sh"
SCALE="${SCALE:-1}"
WORKLOADS="${WORKLOADS:-app small large compress}"
MODES="${MODES:-limited unlimited}"
CPU_MAX="${CPU_MAX:-40000 100000}"
MEM_MAX="${MEM_MAX:-500M}"
KANIKO="${KANIKO:-}"
KANIKO_FLAGS="${KANIKO_FLAGS:---snapshot-mode=redo}"
STRATA_FLAGS="${STRATA_FLAGS:-}"

curl -s -o /dev/null "http://$REG_HTTP_ADDR/v2/" || { log "no registry at $REG_HTTP_ADDR: run scripts/registry-up.sh"; exit 1; }
for t in gzip pigz zstd openssl /usr/bin/time jq mkfs.ext4; do
  command -v "$t" >/dev/null || { log "$t is missing: run scripts/install.sh"; exit 1; }
done
# The lock is held by the caller (see above): cargo must not take it again here.
STRATA="$(cd "$STRATA_REPO" && cargo build -q --release -p strata-cli >&2 && echo "$STRATA_REPO/target/release/strata")"
if [[ -n "$KANIKO" && ! -x "$KANIKO" ]]; then log "KANIKO=$KANIKO is not an executable file"; exit 1; fi

B="$STRATA_STATE/bench-limits"; mkdir -p "$B"
SCR="$B/run-$$"; mkdir -p "$SCR"
CG_MADE=()
cleanup() {
  local d
  for d in "${CG_MADE[@]}"; do [[ -d "$d" ]] && rmdir "$d" 2>/dev/null; done
  release_volumes "$SCR/"
  rm -rf "$SCR"
}
trap cleanup EXIT
RESULTS="$B/results"; : > "$RESULTS"
RUNLOG="$LOG_DIR/bench-limits.log"; : > "$RUNLOG"

# bytes N: N times SCALE, an integer.
bytes() { awk -v s="$SCALE" -v b="$1" 'BEGIN { printf "%d", b * s }'; }
MiB=$((1024 * 1024))

# ---- cgroups ----
CG_VERSION="${CGROUP:-}"
if [[ -z "$CG_VERSION" ]]; then
  if grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
    CG_VERSION=v2
  elif [[ -d /sys/fs/cgroup/memory && -d /sys/fs/cgroup/cpuacct ]] || grep -q ' cgroup .*cpuacct' /proc/self/mounts; then
    CG_VERSION=v1
  else
    log "no usable cgroup hierarchy (v2 with cpu+memory, or v1 cpu/cpuacct/memory) under /sys/fs/cgroup"; exit 1
  fi
fi
# v1_dir CONTROLLER: this shell's cgroup directory in CONTROLLER's hierarchy (children go there,
# so the limits nest inside whatever already contains this session).
v1_dir() {
  local mnt rel
  mnt="$(awk -v c="$1" '$3 == "cgroup" { n = split($4, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) { print $2; exit } }' /proc/self/mounts)"
  [[ -n "$mnt" ]] || { log "cgroup v1 controller $1 is not mounted"; exit 1; }
  rel="$(awk -F: -v c="$1" '{ n = split($2, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) { print $3; exit } }' /proc/self/cgroup)"
  echo "$mnt${rel%/}"
}
if [[ $CG_VERSION == v2 ]]; then
  CG_PARENT="${CGROUP_PARENT:-/sys/fs/cgroup}"
  grep -qw cpu "$CG_PARENT/cgroup.subtree_control" && grep -qw memory "$CG_PARENT/cgroup.subtree_control" \
    || echo "+cpu +memory" > "$CG_PARENT/cgroup.subtree_control"
else
  V1_CPU="$(v1_dir cpu)"; V1_ACCT="$(v1_dir cpuacct)"; V1_MEM="$(v1_dir memory)"
fi
log "cgroup $CG_VERSION; limits: cpu $CPU_MAX, memory $MEM_MAX; SCALE=$SCALE"

CG_SEQ=0
CG_DIRS=()   # the new cgroup's directories (one on v2; cpu, cpuacct, memory on v1, maybe shared)
# cg_make MODE: a new child cgroup with MODE's limits; sets CG_DIRS.
cg_make() {
  local mode="$1" name d
  CG_SEQ=$((CG_SEQ + 1)); name="strata-bench-$$-$CG_SEQ"
  if [[ $CG_VERSION == v2 ]]; then
    CG_DIRS=("$CG_PARENT/$name")
  else
    CG_DIRS=()
    for d in "$V1_CPU/$name" "$V1_ACCT/$name" "$V1_MEM/$name"; do
      [[ " ${CG_DIRS[*]} " == *" $d "* ]] || CG_DIRS+=("$d")
    done
  fi
  for d in "${CG_DIRS[@]}"; do mkdir "$d"; CG_MADE+=("$d"); done
  [[ $mode == limited ]] || return 0
  if [[ $CG_VERSION == v2 ]]; then
    echo "$CPU_MAX" > "${CG_DIRS[0]}/cpu.max"
    echo "$MEM_MAX" > "${CG_DIRS[0]}/memory.max"
    [[ -e "${CG_DIRS[0]}/memory.swap.max" ]] && echo 0 > "${CG_DIRS[0]}/memory.swap.max"
  else
    read -r quota period <<< "$CPU_MAX"
    echo "$period" > "$V1_CPU/$name/cpu.cfs_period_us"
    echo "$quota" > "$V1_CPU/$name/cpu.cfs_quota_us"
    echo "$MEM_MAX" > "$V1_MEM/$name/memory.limit_in_bytes"
    [[ -e "$V1_MEM/$name/memory.memsw.limit_in_bytes" ]] && echo "$MEM_MAX" > "$V1_MEM/$name/memory.memsw.limit_in_bytes"
  fi
  return 0
}
# cg_stats: "cpu_s user_s sys_s cgroup_peak_bytes nr_throttled oom_kills" of the cgroup in CG_DIRS.
cg_stats() {
  if [[ $CG_VERSION == v2 ]]; then
    local d="${CG_DIRS[0]}" peak=-1 oom=0
    [[ -e "$d/memory.peak" ]] && peak="$(cat "$d/memory.peak")"
    oom="$(awk '$1 == "oom_kill" { print $2 }' "$d/memory.events")"
    awk -v peak="$peak" -v oom="${oom:-0}" '
      $1 == "usage_usec" { u = $2 } $1 == "user_usec" { us = $2 } $1 == "system_usec" { sy = $2 }
      $1 == "nr_throttled" { th = $2 }
      END { printf "%.3f %.3f %.3f %s %d %d\n", u / 1e6, us / 1e6, sy / 1e6, peak, th, oom }' "$d/cpu.stat"
  else
    local name; name="$(basename "${CG_DIRS[0]}")"
    local hz; hz="$(getconf CLK_TCK)"
    local usage; usage="$(cat "$V1_ACCT/$name/cpuacct.usage")"
    local peak; peak="$(cat "$V1_MEM/$name/memory.max_usage_in_bytes")"
    local th; th="$(awk '$1 == "nr_throttled" { print $2 }' "$V1_CPU/$name/cpu.stat")"
    local oom; oom="$(awk '$1 == "oom_kill" { print $2 }' "$V1_MEM/$name/memory.oom_control")"
    awk -v u="$usage" -v hz="$hz" -v peak="$peak" -v th="${th:-0}" -v oom="${oom:-0}" '
      $1 == "user" { us = $2 } $1 == "system" { sy = $2 }
      END { printf "%.3f %.3f %.3f %s %d %d\n", u / 1e9, us / hz, sy / hz, peak, th, oom }' "$V1_ACCT/$name/cpuacct.stat"
  fi
}
cg_remove() {
  local d p
  # Everything started in the cgroup has exited when the measured command returns, except
  # what it left behind on purpose; give stragglers 10 s, then count them in the log.
  for _ in $(seq 1 100); do
    p=""; for d in "${CG_DIRS[@]}"; do p+="$(cat "$d/cgroup.procs")"; done
    [[ -z "$p" ]] && break; sleep 0.1
  done
  [[ -z "$p" ]] || log "processes still in ${CG_DIRS[0]} after the command: $p (left there)"
  for d in "${CG_DIRS[@]}"; do rmdir "$d" 2>/dev/null || true; done
}

# measure WORKLOAD MODE TOOL CMD...: CMD alone in a new cgroup with MODE's limits; appends
# "workload mode tool wall cpu user sys rss_kb cgpeak throttled oom status" to $RESULTS.
measure() {
  local workload="$1" mode="$2" tool="$3"; shift 3
  local tf t0 t1 rc=0 procs status rss
  tf="$(mktemp)"
  cg_make "$mode"
  procs=""; for d in "${CG_DIRS[@]}"; do procs+="$d/cgroup.procs "; done
  echo "=== $workload $mode $tool: $*" >> "$RUNLOG"
  t0=$(date +%s%N)
  # The wrapper joins the cgroup, then becomes /usr/bin/time, which starts the command there.
  CG_PROCS="$procs" TIME_OUT="$tf" bash -c 'for f in $CG_PROCS; do echo $$ > "$f"; done; exec /usr/bin/time -f %M -o "$TIME_OUT" "$@"' \
    measured "$@" >> "$RUNLOG" 2>&1 || rc=$?
  t1=$(date +%s%N)
  read -r cpu user sys cgpeak throttled oom <<< "$(cg_stats)"
  cg_remove
  rss="$(tail -n 1 "$tf")"; [[ "$rss" =~ ^[0-9]+$ ]] || rss=-1
  rm -f "$tf"
  status=ok
  if [[ $rc -ne 0 ]]; then status="exit-$rc"; [[ $oom -gt 0 ]] && status=OOM-killed; log "$workload $mode $tool: $status (see $RUNLOG)"; fi
  printf '%s %s %s %s %s %s %s %s %s %s %s %s\n' "$workload" "$mode" "$tool" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')" "$cpu" "$user" "$sys" \
    "$rss" "$cgpeak" "$throttled" "$oom" "$status" >> "$RESULTS"
  log "$workload $mode $tool: $(tail -n 1 "$RESULTS" | cut -d' ' -f4-5) s wall/cpu, $status"
}

VOL=0
# drop_volume DIR: unmounts fresh_volume's DIR and deletes its image.
drop_volume() { umount "$1" 2>/dev/null || umount -l "$1"; rm -f "$1.img"; rmdir "$1" 2>/dev/null || true; }
# strata_build WORKLOAD MODE TOOL CTX REPO [strata flags...]: one build + push, fresh work volume.
strata_build() {
  local workload="$1" mode="$2" tool="$3" ctx="$4" repo="$5"; shift 5
  VOL=$((VOL + 1)); fresh_volume "$SCR/vol-$VOL"
  measure "$workload" "$mode" "$tool" "$STRATA" build -v warn --context "$ctx" --insecure-registry "$REG_HTTP_ADDR" \
    --destination "$REG_HTTP_ADDR/bench-limits/$repo:latest" --work-dir "$SCR/vol-$VOL" $STRATA_FLAGS "$@"
  drop_volume "$SCR/vol-$VOL"
}
# kaniko_build WORKLOAD MODE CTX REPO: the same with kaniko's executor, chrooted into a fresh
# volume (kaniko unpacks the base over the root it runs in), the context bind-mounted read-only.
kaniko_build() {
  [[ -n "$KANIKO" ]] || return 0
  local workload="$1" mode="$2" ctx="$3" repo="$4" r
  VOL=$((VOL + 1)); r="$SCR/vol-$VOL"; fresh_volume "$r"
  mkdir -p "$r/kaniko/.docker" "$r/kaniko/ssl/certs" "$r/workspace" "$r/proc" "$r/dev" "$r/sys" "$r/etc" "$r/tmp"
  cp "$KANIKO" "$r/kaniko/executor"
  cp /etc/ssl/certs/ca-certificates.crt "$r/kaniko/ssl/certs/" 2>/dev/null || true
  cp /etc/resolv.conf /etc/hosts /etc/nsswitch.conf "$r/etc/" 2>/dev/null || true
  echo '{}' > "$r/kaniko/.docker/config.json"
  # shellcheck disable=SC2016
  measure "$workload" "$mode" kaniko unshare -m --fork bash -c '
    r="$1"; ctx="$2"; shift 2
    mount -t proc proc "$r/proc" && mount --rbind /dev "$r/dev" && mount --rbind /sys "$r/sys"
    mount --bind "$ctx" "$r/workspace" && mount -o remount,bind,ro "$r/workspace"
    exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      DOCKER_CONFIG=/kaniko/.docker SSL_CERT_DIR=/kaniko/ssl/certs chroot "$r" /kaniko/executor "$@"' \
    kaniko "$r" "$ctx" --context dir:///workspace --dockerfile /workspace/Dockerfile \
    --destination "$REG_HTTP_ADDR/bench-limits/$repo-kaniko:latest" --insecure --insecure-pull \
    --skip-tls-verify --verbosity warn $KANIKO_FLAGS
  drop_volume "$r"
}
# baseline WORKLOAD MODE SNIPPET: the RUN's shell command alone, SRC = the Debian base's rootfs
# and OUT a directory on a fresh volume.
baseline() {
  local workload="$1" mode="$2" snippet="$3"
  VOL=$((VOL + 1)); fresh_volume "$SCR/vol-$VOL"
  measure "$workload" "$mode" "RUN-command-alone" /bin/sh -c "SRC=$ROOTFS OUT=$SCR/vol-$VOL/out; $snippet"
  drop_volume "$SCR/vol-$VOL"
}

# each_mode WORKLOAD CTX SNIPPET: strata, kaniko and the RUN's command alone, limited and not.
each_mode() {
  local workload="$1" ctx="$2" snippet="$3" mode
  for mode in $MODES; do
    strata_build "$workload" "$mode" strata "$ctx" "$workload"
    kaniko_build "$workload" "$mode" "$ctx" "$workload"
    baseline "$workload" "$mode" "$snippet"
  done
}

ROOTFS="$STRATA_STATE/debian-ctx/rootfs"
# The text corpus: the Debian base's text files in a fixed order, the same inside a RUN ($SRC=/).
TEXT_FILES='usr/lib/x86_64-linux-gnu/perl-base var/lib/dpkg usr/share/perl5 usr/share/common-licenses usr/share/doc'
CORPUS_SNIPPET="cd \"\$SRC\" && find $TEXT_FILES -type f ! -name '*.gz' 2>/dev/null | LC_ALL=C sort | xargs cat"
# text_file N FILE / random_file N FILE: N bytes of repeated corpus / AES-CTR output (host side).
text_file() { (SRC="$ROOTFS"; eval "$CORPUS_SNIPPET") > "$SCR/corpus"; while cat "$SCR/corpus"; do :; done | head -c "$1" > "$2"; }
random_file() { head -c "$1" /dev/zero | openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:strata-${2##*/}" 2>/dev/null > "$2"; }

if [[ " $WORKLOADS " =~ \ (app|small|large)\  ]]; then
  STRATA="$STRATA" "$STRATA_REPO/scripts/base-debian.sh"
fi

# ---- (a) the app ----
if [[ " $WORKLOADS " == *" app "* ]]; then
  app_context "$B/app-ctx"
  for mode in $MODES; do
    strata_build app "$mode" strata "$B/app-ctx" app
    kaniko_build app "$mode" "$B/app-ctx" app
  done
fi

# ---- (b) RUN writing 100k small files ----
if [[ " $WORKLOADS " == *" small "* ]]; then
  N_SMALL="$(bytes 100000)"
  SMALL_SNIPPET="mkdir -p \"\$OUT\" && cd \"\$OUT\" && i=1 && while [ \$i -le $N_SMALL ]; do echo 'Hello world' > somefile\$i; i=\$((i + 1)); done"
  CTX="$SCR/small-ctx"; mkdir -p "$CTX"
  printf 'FROM %s/library/debian:bookworm\nRUN OUT=/workdir; %s\n' "$REG_HTTP_ADDR" "$SMALL_SNIPPET" > "$CTX/Dockerfile"
  each_mode small "$CTX" "$SMALL_SNIPPET"
fi

# ---- (c) RUN writing 1.5 GiB in 20 files + COPY of 300 MiB ----
if [[ " $WORKLOADS " == *" large "* ]]; then
  RUN_FILE="$(bytes $((1536 * MiB / 20)))"; COPY_FILE="$(bytes $((30 * MiB)))"
  CTX="$B/large-ctx-$SCALE"
  if [[ ! -e "$CTX/.complete" ]]; then
    rm -rf "$CTX"; mkdir -p "$CTX/data"
    for i in $(seq 1 10); do
      if (( i % 2 )); then random_file "$COPY_FILE" "$CTX/data/f$i.bin"; else text_file "$COPY_FILE" "$CTX/data/f$i.txt"; fi
    done
    printf 'Dockerfile\n.complete\n' > "$CTX/.dockerignore"; touch "$CTX/.complete"
  fi
  LARGE_SNIPPET="mkdir -p \"\$OUT\" && ($CORPUS_SNIPPET) > \"\$OUT/.corpus\" && i=1 && while [ \$i -le 20 ]; do if [ \$((i % 2)) = 1 ]; then head -c $RUN_FILE /dev/urandom > \"\$OUT/f\$i.bin\"; else while cat \"\$OUT/.corpus\"; do :; done | head -c $RUN_FILE > \"\$OUT/f\$i.txt\"; fi; i=\$((i + 1)); done && rm \"\$OUT/.corpus\""
  printf 'FROM %s/library/debian:bookworm\nRUN SRC=/ OUT=/opt/gen; %s\nCOPY data /data\n' "$REG_HTTP_ADDR" "$LARGE_SNIPPET" > "$CTX/Dockerfile"
  each_mode large "$CTX" "$LARGE_SNIPPET"
fi

# ---- (d) compressors against strata's layer writing, on the same data ----
if [[ " $WORKLOADS " == *" compress "* ]]; then
  HALF="$(bytes $((200 * MiB)))"
  CTX="$B/compress-ctx-$SCALE"
  if [[ ! -e "$CTX/.complete" ]]; then
    rm -rf "$CTX"; mkdir -p "$CTX/data"
    random_file "$HALF" "$CTX/data/random.bin"; text_file "$HALF" "$CTX/data/text.txt"
    printf 'FROM scratch\nCOPY data /data\n' > "$CTX/Dockerfile"
    printf 'Dockerfile\n.complete\n*.tar\n' > "$CTX/.dockerignore"
    tar -C "$CTX" --sort=name --owner=0 --group=0 --numeric-owner -cf "$CTX/data.tar" data
    touch "$CTX/.complete"
  fi
  TAR_BYTES="$(stat -c %s "$CTX/data.tar")"; echo "$TAR_BYTES" > "$B/compress-tar-bytes"
  cat "$CTX/data.tar" > /dev/null   # page cache, as the context is for strata
  for mode in $MODES; do
    for c in "gzip -6" "pigz -6" "zstd -3"; do
      measure compress "$mode" "${c// /}" bash -c "$c -c < '$CTX/data.tar' | wc -c > '$B/size-${c// /}'"
    done
    strata_build compress "$mode" strata-gzip "$CTX" compress-gzip
    strata_build compress "$mode" strata-zstd "$CTX" compress-zstd --compression zstd
  done
  for r in compress-gzip compress-zstd; do
    curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      "http://$REG_HTTP_ADDR/v2/bench-limits/$r/manifests/latest" | jq '[.layers[].size] | add' > "$B/size-strata-${r#compress-}" || true
  done
fi

# ---- report ----
echo
echo "strata $("$STRATA" --version 2>/dev/null | head -n 1), cgroup $CG_VERSION, limited = cpu $CPU_MAX + memory $MEM_MAX, SCALE=$SCALE, $(nproc) cores"
echo "(cpu = the cgroup's CPU seconds; rss = largest process's peak RSS; cg-peak = the cgroup's peak charge, page cache included)"
printf '%-9s %-9s %-18s %8s %8s %7s %7s %8s %8s %7s %s\n' workload mode tool wall-s cpu-s user-s sys-s rss-MiB cg-MiB thrott status
awk '{ printf "%-9s %-9s %-18s %8.2f %8.2f %7.2f %7.2f %8.1f %8.1f %7d %s\n", $1, $2, $3, $4, $5, $6, $7, $8 / 1024, ($9 < 0 ? -1 : $9 / 1048576), $10, $12 }' "$RESULTS"
[[ -n "$KANIKO" ]] || echo "kaniko: not run (no KANIKO=/path/to/executor given; none is installed here). Issue 14's kaniko figures: see README.md."

# field WORKLOAD MODE TOOL COLUMN: one value from $RESULTS.
field() { awk -v w="$1" -v m="$2" -v t="$3" -v c="$4" '$1 == w && $2 == m && $3 == t { print $c; exit }' "$RESULTS"; }
if [[ " $WORKLOADS " == *" compress "* ]]; then
  echo
  gib="$(awk -v b="$TAR_BYTES" 'BEGIN { print b / 1073741824 }')"
  echo "compression, $TAR_BYTES B tar (half random, half text): CPU s per GiB, ratio to gzip -6 in the same mode, output bytes"
  for mode in $MODES; do
    g="$(field compress "$mode" gzip-6 5)"
    for t in gzip-6 pigz-6 zstd-3 strata-gzip strata-zstd; do
      c="$(field compress "$mode" "$t" 5)"; [[ -n "$c" ]] || continue
      size="$(cat "$B/size-$t" 2>/dev/null || echo '?')"
      awk -v m="$mode" -v t="$t" -v c="$c" -v g="$g" -v gib="$gib" -v s="$size" -v w="$(field compress "$mode" "$t" 4)" \
        'BEGIN { printf "  %-9s %-12s %6.2f CPU s/GiB  %5.2fx gzip -6  wall %6.2f s  %s B\n", m, t, c / gib, c / g, w, s }'
    done
  done
  echo "  target (issue 14): strata-gzip at most 0.4x gzip -6"
fi
for w in small large; do
  [[ " $WORKLOADS " == *" $w "* ]] || continue
  for mode in $MODES; do
    s="$(field "$w" "$mode" strata 5)"; r="$(field "$w" "$mode" RUN-command-alone 5)"
    [[ -n "$s" && -n "$r" ]] && awk -v w="$w" -v m="$mode" -v s="$s" -v r="$r" \
      'BEGIN { printf "%s %s: strata %.2f CPU s, of which the RUN command itself %.2f: %.2f CPU s for the builder\n", w, m, s, r, s - r }'
  done
done
if [[ " $MODES " == *" limited "* ]]; then
  echo
  echo "targets at 400m/500Mi (issue 14; kaniko's figures from the issue, same machine, not this run):"
  a="$(field app limited strata 4)"; l="$(field large limited strata 4)"; u="$(field app unlimited strata 4)"
  [[ -n "$a" ]] && awk -v a="$a" 'BEGIN { printf "  app at 400m: %.2f s, %.2fx kaniko 7.0 s (target <= 0.6x)\n", a, a / 7.0 }'
  [[ -n "$u" ]] && awk -v u="$u" 'BEGIN { printf "  app unlimited: %.2f s, %.2fx kaniko redo 2.9 s (target <= 0.5x)\n", u, u / 2.9 }'
  [[ -n "$l" ]] && awk -v l="$l" -v s="$SCALE" 'BEGIN { printf "  large at 400m: %.2f s (target <= 45 s at SCALE=1; kaniko 62.6 s at best)%s\n", l, (s == 1 ? "" : ", not comparable at this SCALE") }'
  awk '$3 ~ /^strata/ && $8 > m { m = $8 } END { printf "  peak RSS of strata over all builds: %.1f MiB (target < 100 MiB)\n", m / 1024 }' "$RESULTS"
fi
