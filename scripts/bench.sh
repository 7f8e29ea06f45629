#!/usr/bin/env bash
# bench.sh: how fast is `bainode seed`, and how does it compare with
# cloud-localds? (`make bench` runs this.)
#
#   scripts/bench.sh                 # 1,000 nodes, cloud-localds on 100 of them
#   NODES=200 SAMPLE=20 RUNS=1 scripts/bench.sh
#
# 1. Writes a site file with NODES nodes (bai-n0001...), alternately agent
#    (GPU) and manager, each with a static address, gateway, DNS and MAC, and
#    the default /etc/hosts block (every node, on every node). Addresses are
#    only text here: nothing is contacted.
# 2. Builds bin/bainode (CGO_ENABLED=0) and times
#    `bin/bainode seed --config gen.yaml -o DIR` RUNS times: parsing,
#    rendering, the cloud-init files and one seed.iso per node.
# 3. Times cloud-localds making the same seeds (user-data, meta-data,
#    network-config, vendor-data as bainode rendered them) for SAMPLE nodes,
#    and scales per seed. cloud-localds gets its input for free, so the
#    comparison flatters it.
# 4. Runs the Go seed benchmarks (builder/seed/bench_test.go) unless GOBENCH=0.
# 5. Runs the seed server benchmarks (builder/serve/bench_test.go: cached
#    user-data GETs from 64, 256 and 1,024 loopback clients, closed loop and
#    open loop at 20,000/s, beside nginx serving the same bytes;
#    cmd/bainoded/bench_test.go: phone-home writes and failover on three
#    members) unless SERVEBENCH=0.
#
# Results are a markdown table on standard output; progress goes to standard
# error. Wall-clock figures depend on what else the machine is doing, so CPU
# time (user+system) is reported too, with the load average.
#
# Needs Go (the version in go.mod, or a Go >= 1.21 that can fetch it) and
# cloud-localds. Missing packages are installed with apt-get when running as
# root: cloud-image-utils (cloud-localds, genisoimage), golang-go and nginx.
#
# 6. Bakes an image with bainode bake, Packer and virt-customize, and boots a
#    baked node against the stock base (bake_bench)
#    unless BAKEBENCH=0; ONLY=bake runs that alone.
# 7. Deploy write throughput: the image-deploy agent against
#    curl | zstd -dc | dd (deploy_bench) unless DEPLOYBENCH=0; ONLY=deploy
#    runs that alone (DEPLOY_RUNS rounds, BAINODE_BENCH_IMAGE).
#
# Environment: NODES (1000), SAMPLE (100), RUNS (3), GOBENCH (1), SERVEBENCH (1),
# BENCH_DIR (a new temporary directory, removed afterwards unless KEEP=1).
set -euo pipefail

NODES=${NODES:-1000}
SAMPLE=${SAMPLE:-100}
RUNS=${RUNS:-3}
GOBENCH=${GOBENCH:-1}
KEEP=${KEEP:-0}
GOAL_SECONDS=2
GOAL_RATIO=20

cd "$(dirname "$0")/.."

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

case $NODES$SAMPLE$RUNS in *[!0-9]*) die "NODES, SAMPLE and RUNS must be whole numbers" ;; esac
if [ "$NODES" -lt 1 ] || [ "$NODES" -gt 9999 ]; then die "NODES must be 1-9999"; fi
if [ "$SAMPLE" -lt 1 ] || [ "$RUNS" -lt 1 ]; then die "SAMPLE and RUNS must be at least 1"; fi
if [ "$SAMPLE" -gt "$NODES" ]; then SAMPLE=$NODES; fi

# need_pkg CMD PACKAGE: install PACKAGE with apt-get when CMD is missing.
apt_updated=0
need_pkg() {
	command -v "$1" >/dev/null 2>&1 && return 0
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		die "$1 is missing; install the $2 package (apt-get install $2) or run this as root"
	fi
	say "installing $2 for $1"
	if [ "$apt_updated" = 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get -q update >&2
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends "$2" >&2
	command -v "$1" >/dev/null 2>&1 || die "$2 is installed but $1 is still missing"
}

need_pkg go golang-go
need_pkg cloud-localds cloud-image-utils
need_pkg genisoimage genisoimage
need_pkg awk gawk
if [ "${SERVEBENCH:-1}" = 1 ]; then need_pkg nginx nginx; fi
go version >/dev/null 2>&1 || die "go does not work; install the Go release go.mod names"

# bake_bench: bainode bake against Packer's QEMU builder and virt-customize
# on the Debian 12 test base with vm-test's image part (BenchmarkBakeTools
# in builder/bake prints the table: wall time with phases, output size,
# sealed or not, bainode's cache hit), then a baked node's first boot against
# the stock base's (BenchmarkFirstBoot). Minutes under TCG. BAKEBENCH=0 skips
# it; ONLY=bake runs nothing else.
bake_bench() {
	need_pkg packer packer
	need_pkg virt-customize libguestfs-tools
	say "go test -bench BakeTools ./builder/bake (bainode bake, packer, virt-customize)"
	LIBGUESTFS_BACKEND=direct go test -count=1 -run '^$' -bench '^BenchmarkBakeTools$' -benchtime 1x -timeout 120m ./builder/bake 2>&1 |
		grep -vE '^(goos|goarch|pkg|cpu|PASS|ok)[: ]|^BenchmarkBakeTools' || true
	# The first boot of the baked node against the stock base installing
	# everything from the same payload. Its bake's progress goes to the
	# benchmark's log: shown only when it fails.
	say "go test -bench FirstBoot ./builder/bake (baked node vs stock base, first boot to verifier report)"
	go test -count=1 -run '^$' -bench '^BenchmarkFirstBoot$' -benchtime 1x -timeout 120m ./builder/bake 2>&1 |
		awk '/^--- FAIL/ { fail = 1 } fail || !/^(goos|goarch|pkg|cpu|ok)[: ]|^PASS$|^BenchmarkFirstBoot|^--- BENCH|^    /' || true
}
if [ "${ONLY:-}" = bake ]; then
	bake_bench
	exit 0
fi

WORK=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/bainode-bench.XXXXXX")}
mkdir -p "$WORK"
cleanup() { [ "$KEEP" = 1 ] || [ -n "${BENCH_DIR:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT
f() { awk "BEGIN { printf \"$1\", $2 }"; }

# iso: remaster a >= 1 GiB live-server-shaped ISO (both Ubuntu layouts, built
# by builder/iso/testdata/fixture.sh with a 1 GiB initrd) with
# `bainode iso --mode autoinstall`, against xorriso's replay of the same
# changes. ISO_MB sets the size of the big file. ONLY=iso runs nothing else.
iso_bench() {
	local d=$WORK/iso mb=${ISO_MB:-1024} layout src peak base t0 t1 t2 sampler
	mkdir -p "$d"
	head -c "$((mb * 1024 * 1024))" /dev/urandom >"$d/big"
	OUT=$d KERNEL=/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/linux INITRD=$d/big \
		sh builder/iso/testdata/fixture.sh
	rm -f "$d/big"
	printf '\n### iso: remaster a %d MiB ISO, bainode vs xorriso replay\n\n' "$((mb + 40))"
	printf '| layout | bainode iso | xorriso -boot_image any replay | ratio | bainode peak extra disk | output |\n|---|---:|---:|---:|---:|---:|\n'
	for layout in focal jammy; do
		src=$d/$layout.iso
		sync
		base=$(df --output=used -B1 "$d" | tail -1)
		peak=$d/peak
		echo 0 >"$peak"
		( while :; do u=$(df --output=used -B1 "$d" | tail -1); [ "$u" -gt "$(cat "$peak")" ] && echo "$u" >"$peak"; sleep 0.1; done ) &
		sampler=$!
		t0=$(date +%s.%N)
		bin/bainode iso --mode autoinstall --base "$src" --server http://10.0.0.2:8080 -o "$d/bainode.iso" >/dev/null 2>&1
		sync
		t1=$(date +%s.%N)
		kill "$sampler"
		mkdir -p "$d/ch"
		xorriso -osirrox on -indev "$d/bainode.iso" -extract /nocloud "$d/ch/nocloud" \
			-extract /boot/grub/grub.cfg "$d/ch/grub.cfg" -extract /boot/grub/loopback.cfg "$d/ch/loopback.cfg" \
			-extract /md5sum.txt "$d/ch/md5sum.txt" >/dev/null 2>&1
		local maps=(-map "$d/ch/nocloud" /nocloud -map "$d/ch/grub.cfg" /boot/grub/grub.cfg
			-map "$d/ch/loopback.cfg" /boot/grub/loopback.cfg -map "$d/ch/md5sum.txt" /md5sum.txt)
		if [ "$layout" = focal ]; then
			xorriso -osirrox on -indev "$d/bainode.iso" -extract /isolinux/txt.cfg "$d/ch/txt.cfg" >/dev/null 2>&1
			maps+=(-map "$d/ch/txt.cfg" /isolinux/txt.cfg)
		fi
		t2=$(date +%s.%N)
		xorriso -indev "$src" -outdev "$d/xorriso.iso" "${maps[@]}" -boot_image any replay >/dev/null 2>&1
		sync
		t3=$(date +%s.%N)
		printf '| %s | %s s | %s s | %s | %s MiB | %s MiB |\n' "$layout" "$(f %.2f "$t1 - $t0")" "$(f %.2f "$t3 - $t2")" \
			"$(f %.2f "($t1 - $t0) / ($t3 - $t2)")" "$(f %.0f "($(cat "$peak") - $base) / 1048576")" \
			"$(f %.0f "$(stat -c %s "$d/bainode.iso") / 1048576")"
		rm -rf "$d/ch" "$d/bainode.iso" "$d/xorriso.iso"
	done
	printf '\n- goal: bainode wall time <= 1.0x xorriso, peak extra disk <= the output size\n'
	rm -rf "$d"
}
# image_iso_bench: a self-contained 'bainode iso --mode image' around an
# ISO_MB raw.zst stand-in (random bytes behind zstd's magic: the ISO only
# copies and hashes it), against xorriso -as mkisofs of the same files (no
# boot setup, no hashing: less work than bainode's) and the disk's
# sequential write speed (dd with fsync), on the same file system. The
# image is read once first, so all start from a warm page cache.
image_iso_bench() {
	local d=$WORK/isoimg mb=${ISO_MB:-1024} t0 t1 t2 t3 t4
	mkdir -p "$d/env" "$d/tree"
	head -c 8388608 /dev/urandom >"$d/env/vmlinuz"
	head -c 33554432 /dev/urandom >"$d/env/initrd.img"
	{ printf '\050\265\057\375'; head -c "$((mb * 1024 * 1024))" /dev/urandom; } >"$d/role.raw.zst"
	cp "$d/env/vmlinuz" "$d/env/initrd.img" "$d/tree/"
	ln "$d/role.raw.zst" "$d/tree/IMAGE000.ZST"
	cat "$d/role.raw.zst" >/dev/null
	sync
	t0=$(date +%s.%N)
	bin/bainode iso --mode image --deploy-env "$d/env" --image "$d/role.raw.zst" --example vm-test --node bai-vm -o "$d/node.iso" >/dev/null 2>&1
	sync
	t1=$(date +%s.%N)
	xorriso -as mkisofs -quiet -V BAINODE_DEPLOY -o "$d/xorriso.iso" "$d/tree" >/dev/null 2>&1
	sync
	t2=$(date +%s.%N)
	t3=$(date +%s.%N)
	dd if=/dev/zero of="$d/dd" bs=4M count="$((mb / 4))" conv=fsync status=none
	t4=$(date +%s.%N)
	printf '\n### iso --mode image: a self-contained ISO around a %d MiB image\n\n' "$mb"
	printf '| bainode iso --mode image --image | xorriso -as mkisofs (same files) | dd bs=4M conv=fsync | bainode / xorriso | bainode MiB/s / dd MiB/s |\n|---:|---:|---:|---:|---:|\n'
	printf '| %s s (%s MiB/s) | %s s | %s s (%s MiB/s) | %s | %s |\n' "$(f %.2f "$t1 - $t0")" "$(f %.0f "$mb / ($t1 - $t0)")" \
		"$(f %.2f "$t2 - $t1")" "$(f %.2f "$t4 - $t3")" "$(f %.0f "$mb / ($t4 - $t3)")" \
		"$(f %.2f "($t1 - $t0) / ($t2 - $t1)")" "$(f %.2f "($t4 - $t3) / ($t1 - $t0)")"
	printf '\n- bainode reads the image twice (sha256 for the config, then an in-kernel copy_file_range) and writes it once\n'
	rm -rf "$d"
}
if [ "${ONLY:-}" = iso ]; then
	need_pkg xorriso xorriso
	CGO_ENABLED=0 go build -o bin/bainode ./cmd/bainode
	[ "${ISO_REMASTER:-1}" = 0 ] || iso_bench
	image_iso_bench
	exit 0
fi

# deploy: the image-deploy agent writing a role image onto a file-backed disk
# (BenchmarkDeployWrite in builder/deploy: the agent's whole path, download,
# sha256, decompress, holes for zeros, table edit, seed, fsync) against
# curl | zstd -dc | dd bs=4M iflag=fullblock conv=sparse,fsync (and without
# sparse) from the same loopback Go server, the raw.zst warm in the page
# cache, the output a new file on the same file system. DEPLOY_RUNS rounds
# (5), each side in its own process, the order alternating; medians. The
# image is a synthetic 640 MiB disk, or BAINODE_BENCH_IMAGE=x.raw.zst.
# ONLY=deploy runs nothing else.
deploy_bench() {
	need_pkg curl curl
	need_pkg zstd zstd
	local d=$WORK/deploy runs=${DEPLOY_RUNS:-5} r side sides img load0
	mkdir -p "$d"
	go test -c -o "$d/deploy.test" ./builder/deploy
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	: >"$d/results"
	for r in $(seq "$runs"); do
		sides="agent curl-zstd-dd-sparse curl-zstd-dd"
		if [ $((r % 2)) = 0 ]; then sides="curl-zstd-dd curl-zstd-dd-sparse agent"; fi
		for side in $sides; do
			say "deploy: round $r of $runs, $side"
			TMPDIR=$d "$d/deploy.test" -test.run '^$' -test.bench "^BenchmarkDeployWrite\$/^$side\$" -test.benchtime 1x -test.v >"$d/out" 2>&1 ||
				{ cat "$d/out" >&2; die "BenchmarkDeployWrite/$side failed"; }
			img=$(sed -n 's/.*bench_test.go:[0-9]*: image \(.*\); load.*/\1/p' "$d/out")
			awk -v s="$side" '$1 ~ "^BenchmarkDeployWrite/" && $4 == "ns/op" { print s, $5, $7 }' "$d/out" >>"$d/results"
		done
	done
	# med SIDE FIELD: the median of a column of the results (2: MB/s, 3: CPU s).
	med() { awk -v s="$1" -v c="$2" '$1 == s { print $c }' "$d/results" | sort -g | awk '
		{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
	runs_of() { awk -v s="$1" '$1 == s { printf "%s%.0f", sep, $2; sep = ", " }' "$d/results"; }
	local a s p
	a=$(med agent 2) s=$(med curl-zstd-dd-sparse 2) p=$(med curl-zstd-dd 2)
	printf '\n### deploy: image write vs curl | zstd | dd (%s)\n\n' "$img"
	printf -- '- %s CPUs, load average before/after: %s / %s\n\n' "$(getconf _NPROCESSORS_ONLN)" "$load0" "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf '| | median MB/s | runs (MB/s) | median CPU s |\n|---|---:|---|---:|\n'
	printf '| bainode deploy agent (sha256, holes, seed, fsync) | %.0f | %s | %.2f |\n' "$a" "$(runs_of agent)" "$(med agent 3)"
	printf '| curl \\| zstd -dc \\| dd conv=sparse,fsync | %.0f | %s | %.2f |\n' "$s" "$(runs_of curl-zstd-dd-sparse)" "$(med curl-zstd-dd-sparse 3)"
	printf '| curl \\| zstd -dc \\| dd conv=fsync | %.0f | %s | %.2f |\n' "$p" "$(runs_of curl-zstd-dd)" "$(med curl-zstd-dd 3)"
	# Paired: each round's agent figure over the same round's dd (sparse),
	# which the load of that moment affects alike.
	local paired
	paired=$(awk '$1 == "agent" { a[++na] = $2 } $1 == "curl-zstd-dd-sparse" { s[++ns] = $2 }
		END { for (i = 1; i <= na && i <= ns; i++) print a[i] / s[i] }' "$d/results" | sort -g | awk '
		{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
	printf '\n- ratio, agent / dd sparse: **%sx** (median of each round'"'"'s ratio: %sx; CPU time, dd / agent: %sx); agent / dd without sparse: %sx\n' \
		"$(f %.2f "$a / $s")" "$(f %.2f "$paired")" "$(f %.2f "$(med curl-zstd-dd-sparse 3) / $(med agent 3)")" "$(f %.2f "$a / $p")"
	printf -- '- goal, agent >= 0.9x curl | zstd | dd (sparse): %s\n' "$(awk "BEGIN { exit !($a >= 0.9 * $s) }" && echo met || echo "not met")"
	rm -rf "$d"
}
if [ "${ONLY:-}" = deploy ]; then
	deploy_bench
	exit 0
fi

# --- 1. the site -----------------------------------------------------------
SITE=$WORK/gen.yaml
awk -v n="$NODES" 'BEGIN {
	print "# Generated by scripts/bench.sh: " n " nodes."
	print "version: 1"
	print "name: bench-" n
	print "target: ubuntu-20.04"
	print "roles:"
	print "  agent:"
	print "    gpu:"
	print "      enabled: true"
	print "nodes:"
	for (i = 1; i <= n; i++) {
		printf "  - hostname: bai-n%04d\n", i
		printf "    role: %s\n", (i % 2 ? "agent" : "manager")
		printf "    ip: 10.20.%d.%d/16\n", int(i / 200), i % 200 + 10
		print "    gateway: 10.20.0.1"
		print "    dns: [10.20.0.1]"
		printf "    mac: \"52:54:00:%02x:%02x:%02x\"\n", int(i / 65536) % 256, int(i / 256) % 256, i % 256
	}
}' >"$SITE"
say "wrote $SITE ($NODES nodes)"

# --- 2. bainode --------------------------------------------------------------
say "building bin/bainode"
mkdir -p bin
CGO_ENABLED=0 go build -o bin/bainode ./cmd/bainode
bin/bainode validate --config "$SITE" >&2

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)
load() { cut -d' ' -f1-3 /proc/loadavg; }
load_before=$(load)

# timed OUTFILE CMD...: run CMD with its output discarded and append
# "wall user sys" (seconds, children included) to OUTFILE.
timed() {
	local out=$1
	shift
	local TIMEFORMAT='%R %U %S'
	{ time "$@" >/dev/null 2>&1; } 2>>"$out"
}

# A small untimed run first, so the binary and templates are in the page cache.
bin/bainode seed --config "$SITE" --node bai-n0001 -o "$WORK/warm" >/dev/null 2>&1

: >"$WORK/bainode.times"
# Each run writes a new directory: deleting thousands of files just before a
# run makes the filesystem slower to create new ones (ext4 skips recently
# freed inodes), which is not bainode's cost.
for r in $(seq "$RUNS"); do
	say "bainode seed: run $r of $RUNS, $NODES nodes"
	timed "$WORK/bainode.times" bin/bainode seed --config "$SITE" -o "$WORK/out.$r"
done
ln -sfn "out.$RUNS" "$WORK/out"
n_seeds=$(find "$WORK/out/" -name seed.iso | wc -l)
[ "$n_seeds" = "$NODES" ] || die "bainode wrote $n_seeds seeds, not $NODES"

# The median run by wall time.
read -r b_wall b_user b_sys < <(sort -n "$WORK/bainode.times" | awk -v m=$(((RUNS + 1) / 2)) 'NR == m')

# --- 3. cloud-localds ----------------------------------------------------------
# SAMPLE nodes spread over the site, both roles, from bainode's own files.
awk -v n="$NODES" -v s="$SAMPLE" -v w="$WORK" 'BEGIN {
	for (k = 0; k < s; k++) {
		i = 2 * int(k * n / (2 * s)) + 1 + k % 2 # odd (agent), even (manager), ...
		printf "%s/out/bai-n%04d\n", w, i
	}
}' >"$WORK/sample.list"
localds_all() {
	local d
	while read -r d; do
		cloud-localds -N "$d/network-config" -V "$d/vendor-data" "$d/localds.iso" "$d/user-data" "$d/meta-data"
	done <"$WORK/sample.list"
}
: >"$WORK/localds.times"
say "cloud-localds: $SAMPLE seeds"
timed "$WORK/localds.times" localds_all
read -r c_wall c_user c_sys <"$WORK/localds.times"
[ "$(find "$WORK/out/" -name localds.iso | wc -l)" = "$SAMPLE" ] || die "cloud-localds did not make $SAMPLE seeds"
load_after=$(load)

# --- 4. sizes ------------------------------------------------------------------
# stats FILES...: min median mean max of the sizes, and how many exceed 16 KiB.
stats() {
	stat -c %s "$@" | sort -n | awk '
		{ v[NR] = $1; sum += $1; if ($1 > 16384) over++ }
		END { printf "%d %d %d %d %d\n", v[1], v[int((NR + 1) / 2)], sum / NR, v[NR], over }'
}
read -r ud_min ud_med ud_mean ud_max ud_over < <(stats "$WORK"/out/*/user-data)
read -r _ _ iso_mean _ _ < <(stats "$WORK"/out/*/seed.iso)
read -r _ _ cl_mean _ _ < <(stats "$WORK"/out/*/localds.iso)

# --- 5. report -----------------------------------------------------------------
b_cpu=$(f %.2f "$b_user + $b_sys")
c_cpu=$(f %.2f "$c_user + $c_sys")
b_rate=$(f %.0f "$NODES / $b_wall")
c_rate=$(f %.1f "$SAMPLE / $c_wall")
b_cpu_rate=$(f %.0f "$NODES / $b_cpu")
c_cpu_rate=$(f %.1f "$SAMPLE / $c_cpu")
ratio=$(f %.1f "($NODES / $b_wall) / ($SAMPLE / $c_wall)")
cpu_ratio=$(f %.1f "($c_cpu / $SAMPLE) / ($b_cpu / $NODES)")
c_proj=$(f %.1f "$c_wall / $SAMPLE * $NODES")
pass() { awk "BEGIN { exit !($1) }" && echo met || echo "not met"; }

cat <<EOF
## bainode seed vs cloud-localds, $NODES nodes

- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $ncpu CPUs, ${cpu_model:-unknown CPU}, $(uname -sr)
- load average before/after: $load_before / $load_after
- bainode: $(bin/bainode version 2>/dev/null | head -1), $(go version | cut -d' ' -f3), GOMAXPROCS $ncpu
- cloud-localds: cloud-image-utils $(dpkg-query -W -f='${Version}' cloud-image-utils 2>/dev/null || echo '?'), $(genisoimage --version 2>&1 | head -1)
- bainode runs (wall user sys, s): $(tr '\n' ';' <"$WORK/bainode.times" | sed 's/;$//; s/;/; /g'); the median is used

| | bainode seed | cloud-localds |
|---|---:|---:|
| seeds made | $NODES (all) | $SAMPLE (sample) |
| what is timed | parse, render, write files, seed | seed from ready files |
| wall time | $(f %.2f "$b_wall") s | $(f %.2f "$c_wall") s |
| CPU time (user+sys) | $b_cpu s | $c_cpu s |
| wall per seed | $(f %.2f "$b_wall * 1000 / $NODES") ms | $(f %.1f "$c_wall * 1000 / $SAMPLE") ms |
| CPU per seed | $(f %.2f "$b_cpu * 1000 / $NODES") ms | $(f %.1f "$c_cpu * 1000 / $SAMPLE") ms |
| seeds/second (wall) | $b_rate | $c_rate |
| seeds/second (CPU) | $b_cpu_rate | $c_cpu_rate |
| time for $NODES seeds | $(f %.2f "$b_wall") s | $c_proj s (scaled) |
| mean seed image size | $iso_mean B | $cl_mean B |

- ratio, seeds/second by wall time: **${ratio}x**; by CPU time: ${cpu_ratio}x
- goal, $NODES seeds in under ${GOAL_SECONDS} s: $(pass "$b_wall < $GOAL_SECONDS")
- goal, at least ${GOAL_RATIO}x cloud-localds per seed: $(pass "$ratio >= $GOAL_RATIO")

| user-data | min | median | mean | max | over 16 KiB |
|---|---:|---:|---:|---:|---:|
| bytes | $ud_min | $ud_med | $ud_mean | $ud_max | $ud_over of $NODES |
EOF

if awk -v l="${load_before%% *}" -v n="$ncpu" 'BEGIN { exit !(l > n / 2) }'; then
	printf '\nThe machine was busy (load %s on %s CPUs): wall times include waiting for other work; CPU times are the steadier figure.\n' "$load_before" "$ncpu"
fi

if [ "$GOBENCH" = 1 ]; then
	say "go test -bench builder/seed"
	printf '\n### Go benchmarks (one node: cluster example bai-a01)\n\n```\n'
	go test -run '^$' -bench . -benchmem -count 1 ./builder/seed 2>&1 | grep -E '^(Benchmark|cpu:)'
	printf '```\n'
fi

# Seed server: bainoded's handler and nginx under the same loopback load.
# The load generator shares the CPUs with the server, so the load average
# matters more here than anywhere else.
if [ "${SERVEBENCH:-1}" = 1 ]; then
	say "go test -bench UserData ./builder/serve"
	printf '\n### Seed server: cached user-data GETs over loopback\n\n'
	printf -- '- load average before: %s\n\n```\n' "$(load)"
	go test -tags libsqlite3 -run '^$' -bench 'UserData' -benchtime 2s -count 1 ./builder/serve 2>&1 |
		grep -E '^(Benchmark|cpu:|--- FAIL|FAIL)|bench_test' || true
	printf '```\n\n- load average after: %s\n' "$(load)"

	# Cluster: three bainoded processes on 127.0.0.1 ports.
	say "go test -bench 'ClusterPhoneHome|Failover' ./cmd/bainoded"
	printf '\n### Seed server cluster: phone-home writes and failover (3 members)\n\n'
	printf -- '- load average before: %s\n\n```\n' "$(load)"
	go test -tags libsqlite3 -run '^$' -bench 'ClusterPhoneHome' -benchtime 5000x -count 1 ./cmd/bainoded 2>&1 |
		grep -E '^(Benchmark|--- FAIL|FAIL)' || true
	go test -tags libsqlite3 -run '^$' -bench 'Failover' -benchtime 3x -count 1 -timeout 30m ./cmd/bainoded 2>&1 |
		grep -E '^(Benchmark|--- FAIL|FAIL)' || true
	printf '```\n\n- load average after: %s\n' "$(load)"
fi

# VM boot: QEMU start to the verifier's report, for the vm-test seed on the
# Debian 12 test base (two boots: first boot, then a reboot).
if [ "${VMBENCH:-1}" = 1 ]; then
	say "go test -run TestSmokeVMTest ./testing/qemu"
	printf '\n### VM boot: QEMU start to the verifier report (vm-test seed)\n\n```\n'
	go test -count=1 -run '^TestSmokeVMTest$' -v -timeout 60m ./testing/qemu 2>&1 |
		grep -E 'report after [0-9]+m?[0-9.]+s \(|accel|^(--- |ok|FAIL)' || true
	printf '```\n'
fi

# fetch: 8 artifacts from a loopback HTTP server, bainode fetch --jobs 4 vs
# sequential curl, then a warm-cache run. FETCH_MB sets each file's size.
if [ "${FETCHBENCH:-1}" = 1 ]; then
	say "fetch: ${FETCH_MB:-200} MB x 8 from 127.0.0.1"
	fdir=$WORK/fetch
	mkdir -p "$fdir/srv" "$fdir/curl"
	: >"$fdir/list"
	for i in 1 2 3 4 5 6 7 8; do
		head -c "$((${FETCH_MB:-200} * 1024 * 1024))" /dev/urandom >"$fdir/srv/a$i.bin"
	done
	port=$((20000 + RANDOM % 20000))
	python3 -m http.server "$port" --bind 127.0.0.1 --directory "$fdir/srv" >/dev/null 2>&1 &
	srv=$!
	for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.1; done
	for i in 1 2 3 4 5 6 7 8; do
		echo "http://127.0.0.1:$port/a$i.bin $(sha256sum "$fdir/srv/a$i.bin" | cut -d' ' -f1)" >>"$fdir/list"
	done
	t0=$(date +%s.%N)
	bin/bainode fetch -q --cache "$fdir/cache" --lock "$fdir/bainode.lock" --list "$fdir/list" --jobs 4 >/dev/null
	t1=$(date +%s.%N)
	bin/bainode fetch -q --cache "$fdir/cache" --lock "$fdir/bainode.lock" --list "$fdir/list" --jobs 4 >/dev/null
	t2=$(date +%s.%N)
	for i in 1 2 3 4 5 6 7 8; do curl -fsS -o "$fdir/curl/a$i.bin" "http://127.0.0.1:$port/a$i.bin"; done
	t3=$(date +%s.%N)
	kill "$srv"
	cat <<EOT

### fetch: 8 x ${FETCH_MB:-200} MB from a loopback server

| | wall time |
|---|---:|
| bainode fetch --jobs 4 (verifies sha256) | $(f %.2f "$t1 - $t0") s |
| bainode fetch, warm cache | $(f %.3f "$t2 - $t1") s |
| sequential curl (no checks) | $(f %.2f "$t3 - $t2") s |

- ratio, curl time / bainode fetch time: $(f %.2f "($t3 - $t2) / ($t1 - $t0)")x
EOT
	rm -rf "$fdir"
fi

if [ "${BAKEBENCH:-1}" = 1 ]; then
	bake_bench
fi

if [ "${ISOBENCH:-1}" = 1 ]; then iso_bench; image_iso_bench; fi

if [ "${DEPLOYBENCH:-1}" = 1 ]; then deploy_bench; fi
