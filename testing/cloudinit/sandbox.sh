#!/bin/bash
# Runs cloud-init's four boot stages against a NoCloud seed without a VM.
# Started by Tree.Stages under `unshare --mount --pid --uts --ipc --net --fork`:
# everything below happens in those private namespaces, on an overlay of the
# host's root whose writes go to a tmpfs, so nothing reaches the host.
#   sandbox.sh WORK SEED CLOUDCFG PYTHONPATH SHIM [HOOK]
# WORK: an empty directory; SEED: user-data, meta-data[, network-config];
# CLOUDCFG: a folder with cloud.cfg and cloud.cfg.d/ to install ("" keeps the host's);
# HOOK: a program run in the root after the stages, with this tree as
# `cloud-init` on PATH. Writes WORK/out/.
set -euo pipefail
W=$1 SEED=$2 CFG=$3 PP=$4 SHIM=$5 HOOK=${6:-}
mount --make-rprivate /
mount -t tmpfs -o mode=0755 tmpfs "$W"
mkdir -p "$W/upper" "$W/work" "$W/root" "$W/out"
# The paths to stat, read before anything the stages start can eat stdin.
cat >"$W/paths"
mount -t overlay overlay -o "lowerdir=/,upperdir=$W/upper,workdir=$W/work" "$W/root"
R=$W/root
mount -t proc proc "$R/proc"
# A writable copy of /proc/sys: sysctl -p must not reach the host kernel.
mkdir -p "$W/sys"
(cd /proc/sys && find . -type f -readable -print0 | while IFS= read -r -d '' f; do
	mkdir -p "$W/sys/$(dirname "$f")"
	cat "$f" >"$W/sys/$f" 2>/dev/null || true
done)
mount --bind "$W/sys" "$R/proc/sys"
mount -t sysfs -o ro sysfs "$R/sys"
# /dev without block devices: cloud-init must not find or touch a disk.
mount -t tmpfs -o mode=0755 tmpfs "$R/dev"
for d in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
	IFS=: read -r n ma mi <<<"$d"
	mknod -m 0666 "$R/dev/$n" c "$ma" "$mi"
done
mkdir -p "$R/dev/pts" "$R/dev/shm"
mount -t tmpfs tmpfs "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
for m in run tmp; do mount -t tmpfs -o mode=1777 tmpfs "$R/$m"; done
chmod 0755 "$R/run"
# The trees and the shim live in the user's cache, which may be under /tmp
# or /run (XDG_CACHE_HOME): show it through the fresh tmpfs.
d=$(dirname "$SHIM")
case $d in /tmp/* | /run/*)
	mkdir -p "$R$d"
	mount --bind "$d" "$R$d"
	;;
esac
# A fresh instance: no state, logs or config from the host's cloud-init.
rm -rf "$R/var/lib/cloud" "$R/var/log/cloud-init.log" "$R/var/log/cloud-init-output.log"
mkdir -p "$R/var/lib/cloud/seed/nocloud" "$R/run/cloud-init"
# What cloud-init-generator leaves on a systemd boot. `status` reads it once
# /run/systemd/system exists (a bootcmd's `systemctl --runtime` makes it).
touch "$R/run/cloud-init/enabled"
cp "$SEED"/* "$R/var/lib/cloud/seed/nocloud/"
if [ -n "$CFG" ]; then
	# Ubuntu's layout: cloud.cfg and cloud.cfg.d/*.cfg from the tree.
	rm -f "$R/etc/cloud/cloud.cfg.d/"*.cfg
	cp "$CFG/cloud.cfg" "$R/etc/cloud/cloud.cfg"
	cp "$CFG"/cloud.cfg.d/*.cfg "$R/etc/cloud/cloud.cfg.d/"
	rm -rf "$R/etc/cloud/templates"
	mkdir -p "$R/etc/cloud/templates"
	cp "$CFG"/templates/*.tmpl "$R/etc/cloud/templates/"
fi
# This host has not generated Ubuntu's default en_US.UTF-8 locale; C.UTF-8
# always exists.
# Network config is not applied: the host has no netplan or ifupdown to render
# for, and the namespace has no NIC. The VM boots apply it.
printf 'datasource_list: [NoCloud, None]\nlocale: C.UTF-8\nnetwork: {config: disabled}\n' >"$R/etc/cloud/cloud.cfg.d/99-bainode-sandbox.cfg"
# No network in the namespace: a GPU seed's apt-get fails at once instead of
# backing off through its retries.
printf 'Acquire::Retries "0";\n' >"$R/etc/apt/apt.conf.d/99bainode-sandbox"
hostname sandbox
export PYTHONPATH=$PP
ci() { chroot "$R" /usr/bin/python3 "$SHIM" cli "$@"; }
rc=0
for stage in "init --local" "init" "modules --mode config" "modules --mode final"; do
	# shellcheck disable=SC2086
	ci $stage >>"$W/out/stages.log" 2>&1 || rc=$?
	echo "stage '$stage' exit $rc" >>"$W/out/stages.log"
done
set +e
ci status --long >"$W/out/status" 2>&1
echo $? >"$W/out/status.rc"
set -e
# What the test inspects, copied out before the namespace goes away.
mkdir -p "$W/out/root"
for f in etc/passwd etc/group etc/shadow var/log/cloud-init.log var/log/cloud-init-output.log \
	run/cloud-init/result.json run/cloud-init/status.json var/lib/bainode/verify-provision.json; do
	[ -e "$R/$f" ] && { mkdir -p "$W/out/root/$(dirname "$f")"; cp -L "$R/$f" "$W/out/root/$f"; }
done
# Ownership and mode of every path the test named on stdin.
stats() {
	while IFS= read -r p; do
		# A symlink is stat'ed itself: its target is absolute, in $R.
		if [ -e "$R$p" ] || [ -L "$R$p" ]; then stat -c '%n %u %g %a %F' "$R$p" | sed "s|^$R||"; else echo "$p missing"; fi
	done <"$W/paths"
}
stats >"$W/out/stat"
if [ -n "$HOOK" ]; then
	# The tree as the package installs it: a `cloud-init` on PATH.
	mkdir -p "$R/run/bainode-sandbox/bin"
	printf '#!/bin/sh\nexec /usr/bin/python3 %s cli "$@"\n' "$SHIM" >"$R/run/bainode-sandbox/bin/cloud-init"
	cp "$HOOK" "$R/run/bainode-sandbox/hook"
	chmod 0755 "$R/run/bainode-sandbox/bin/cloud-init" "$R/run/bainode-sandbox/hook"
	set +e
	chroot "$R" env PATH=/run/bainode-sandbox/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		/run/bainode-sandbox/hook >"$W/out/hook.out" 2>"$W/out/hook.err"
	echo $? >"$W/out/hook.rc"
	set -e
	stats >"$W/out/stat.after"
	mkdir -p "$W/out/after/etc"
	if [ -e "$R/etc/machine-id" ]; then cp "$R/etc/machine-id" "$W/out/after/etc/machine-id"; fi
fi
ls -la "$R/home" >"$W/out/home" 2>&1 || true
for d in "$R"/home/*/; do ls -la "$d"; done >>"$W/out/home" 2>&1 || true
# The tmpfs dies with the namespace: hand results back on a tar stream.
tar -C "$W/out" -cf - .
