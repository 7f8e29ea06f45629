#!/bin/bash
# Replaces Debian's cloud-init in a raw copy of the VM test base with a
# source tree, laid out as Ubuntu's package lays it out. Started by
# Tree.VMBase; offline: the disk is loop-mounted, nothing boots.
# Inputs (environment):
#   RAW    raw disk (MBR, root ext4 in the partition of type 83)
#   TREE   the cloud-init tree (holds cloudinit/, tools/, config/, templates/)
#   STAGE  files rendered on the host for variant ubuntu: cloud.cfg,
#          systemd/ (units and cloud-init-generator)
#   LIBS   optional: Python packages that go before Debian's (20.1's Jinja2 2.x)
#   ALIASES  "1": re-add the collections aliases Python 3.10 dropped (20.1)
# Needs the Debian archive (the base's apt sources) for netplan.io.
set -euo pipefail
: "${RAW:?}" "${TREE:?}" "${STAGE:?}"

mnt=$(mktemp -d)
loopdev=
cleanup() {
	for m in dev sys proc; do
		if mountpoint -q "$mnt/$m"; then umount "$mnt/$m"; fi
	done
	if mountpoint -q "$mnt"; then umount "$mnt"; fi
	if [ -n "$loopdev" ]; then losetup -d "$loopdev" || true; fi
	rmdir "$mnt"
}
trap cleanup EXIT

start=$(sfdisk -d "$RAW" | sed -n 's/.*start= *\([0-9]*\),.*type=83.*/\1/p')
[ -n "$start" ] || { echo "install-tree: no root partition in $RAW" >&2; exit 1; }
loopdev=$(losetup --find --show --offset $((start * 512)) "$RAW")
mount -t ext4 "$loopdev" "$mnt"
R=$mnt

# Ubuntu renders network config with netplan, which matches interfaces by
# name glob and MAC: ifupdown cannot, and bainode's network-config for
# Ubuntu targets matches "en*".
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
mount --bind /dev "$R/dev"
cp -a "$R/etc/resolv.conf" "$mnt.resolv" 2>/dev/null || true
cp /etc/resolv.conf "$R/etc/resolv.conf.bainode" && mv "$R/etc/resolv.conf.bainode" "$R/etc/resolv.conf"
chroot "$R" apt-get -qq -o Acquire::Retries=3 update
DEBIAN_FRONTEND=noninteractive chroot "$R" apt-get -qq -o Acquire::Retries=3 install -y --no-install-recommends netplan.io >/dev/null
chroot "$R" apt-get clean
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin
if [ -e "$mnt.resolv" ]; then mv "$mnt.resolv" "$R/etc/resolv.conf"; fi
for m in dev sys proc; do umount "$R/$m"; done

# Only the tree may run: Debian's package goes, with its conffiles and unit
# links. Its Python dependencies stay; every tree imports with them.
chroot "$R" dpkg --purge cloud-init >/dev/null
rm -rf "$R/etc/cloud/templates" "$R/usr/lib/python3/dist-packages/cloudinit"

py=$R/usr/lib/python3/dist-packages
cp -a "$TREE/cloudinit" "$py/cloudinit"
find "$py/cloudinit" -name __pycache__ -prune -exec rm -rf {} +
# The package's console scripts.
for s in "cloud-init:cloudinit.cmd.main" "cloud-id:cloudinit.cmd.cloud_id"; do
	printf '#!/usr/bin/python3\nimport sys\nfrom %s import main\nsys.exit(main())\n' "${s#*:}" >"$R/usr/bin/${s%%:*}"
	chmod 0755 "$R/usr/bin/${s%%:*}"
done
install -d "$R/usr/lib/cloud-init"
for t in ds-identify uncloud-init write-ssh-key-fingerprints hook-hotplug; do
	if [ -f "$TREE/tools/$t" ]; then install -m 0755 "$TREE/tools/$t" "$R/usr/lib/cloud-init/$t"; fi
done

install -d "$R/etc/cloud/cloud.cfg.d" "$R/etc/cloud/templates"
install -m 0644 "$STAGE/cloud.cfg" "$R/etc/cloud/cloud.cfg"
install -m 0644 "$TREE"/config/cloud.cfg.d/* "$R/etc/cloud/cloud.cfg.d/"
install -m 0644 "$TREE"/templates/* "$R/etc/cloud/templates/"

sd=$R/usr/lib/systemd/system
install -d "$sd" "$R/usr/lib/systemd/system-generators"
install -m 0755 "$STAGE/systemd/cloud-init-generator" "$R/usr/lib/systemd/system-generators/cloud-init-generator"
units=()
for u in "$STAGE"/systemd/*.service "$STAGE"/systemd/*.target "$STAGE"/systemd/*.socket; do
	[ -e "$u" ] || continue
	install -m 0644 "$u" "$sd/"
	if grep -q '^\[Install\]' "$u"; then units+=("$(basename "$u")"); fi
done
if [ -f "$STAGE/systemd/disable-sshd-keygen-if-cloud-init-active.conf" ]; then
	install -D -m 0644 "$STAGE/systemd/disable-sshd-keygen-if-cloud-init-active.conf" \
		"$sd/sshd-keygen@.service.d/disable-sshd-keygen-if-cloud-init-active.conf"
fi
# As dh_installsystemd does: every unit with an [Install] section.
systemctl --root="$R" enable "${units[@]}" >/dev/null 2>&1

if [ -n "${LIBS:-}" ]; then
	# Before Debian's dist-packages on sys.path.
	d=$R/usr/local/lib/$(chroot "$R" /usr/bin/python3 -c 'import sys; print("python%d.%d" % sys.version_info[:2])')/dist-packages
	install -d "$d"
	cp -a "$LIBS"/. "$d/"
	rm -f "$d/README"
fi
if [ "${ALIASES:-}" = 1 ]; then
	# A .pth line that starts with "import" runs when site loads it.
	cat >"$py/bainode_collections_aliases.py" <<'PY'
# cloud-init 20.1 uses collections.Iterable and friends, gone in Python 3.10.
import collections
import collections.abc

for _n in ("Iterable", "Mapping", "MutableMapping", "Sequence", "Callable", "Set", "MutableSet", "Hashable"):
    if not hasattr(collections, _n):
        setattr(collections, _n, getattr(collections.abc, _n))
PY
	echo 'import bainode_collections_aliases' >"$py/bainode-collections-aliases.pth"
	# cloudinit/log.py reads collections.Iterable when it sets up logging.
	chroot "$R" /usr/bin/python3 -c 'import collections; collections.Iterable'
fi
chroot "$R" /usr/bin/cloud-init --version

