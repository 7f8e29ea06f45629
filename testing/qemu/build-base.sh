#!/bin/bash
# Builds the Debian 12 VM test base: an MBR disk that boots by itself under
# SeaBIOS (extlinux in the ext4 root partition) and under OVMF (GRUB at the
# removable path of an EFI system partition, which loads /vmlinuz and
# /initrd.img of the root found by UUID), plus the kernel and initrd next to it.
#
# Inputs (environment, set by base.go):
#   OUT       empty directory that receives disk.qcow2, vmlinuz, initrd.img, base.json
#   SOURCES   deb822 apt sources file (taken from the host at run time)
#   PACKAGES  comma-separated package list
#   SIZE_MIB  virtual disk size
# Needs root: mmdebstrap's root mode keeps file owners, and extlinux wants a
# mounted file system (loop device). Without loop devices the disk is left
# without the BIOS boot loader and callers boot vmlinuz/initrd.img directly
# (UEFI needs no loop device: the ESP is built with mtools).
set -euo pipefail

: "${OUT:?}" "${SOURCES:?}" "${PACKAGES:?}" "${SIZE_MIB:?}"

work=$(mktemp -d "$OUT/.work.XXXXXX")
rootfs=$work/rootfs
mnt=$work/mnt
loopdev=
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt"; fi
	if [ -n "$loopdev" ]; then losetup -d "$loopdev" || true; fi
	# Never delete through a mount mmdebstrap left behind (/proc, /sys, /dev).
	if grep -q " $work/" /proc/self/mountinfo; then
		echo "build-base: not removing $work: mounts remain below it" >&2
		return
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

step() { echo "build-base: $*"; }

uuid=$(cat /proc/sys/kernel/random/uuid)

step "mmdebstrap bookworm ($(wc -l <"$SOURCES") source lines)"
# minbase keeps the image small; everything the tests need is listed explicitly.
# The root fs type is set before the kernel package comes in: initramfs-tools
# cannot probe it in a chroot and would leave fsck out of the initramfs.
mmdebstrap --mode=root --variant=minbase --include="$PACKAGES" \
	--essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" && echo FSTYPE=ext4 >"$1/etc/initramfs-tools/conf.d/bainode-fstype"' \
	--aptopt='Acquire::Retries "3"' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	bookworm "$rootfs" "$SOURCES"

kver=$(basename "$(ls -1 "$rootfs"/boot/vmlinuz-* | sort -V | tail -n1)")
kver=${kver#vmlinuz-}
cmdline="root=UUID=$uuid ro console=tty0 console=ttyS0,115200n8"

step "configure guest (kernel $kver)"
echo debian >"$rootfs/etc/hostname"
printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$uuid" >"$rootfs/etc/fstab"
# cloud-init renders ENI into interfaces.d; DHCP on the user-mode NIC comes
# from its fallback network config.
cat >"$rootfs/etc/network/interfaces" <<'ENI'
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback
ENI
mkdir -p "$rootfs/etc/cloud/cloud.cfg.d"
cat >"$rootfs/etc/cloud/cloud.cfg.d/90-bainode.cfg" <<'CFG'
# Only the NoCloud seed (or nothing): no probing of cloud metadata services.
datasource_list: [NoCloud, None]
# The base has no locales package: the default en_US.UTF-8 fails cc_locale.
locale: C.UTF-8
# RSA host keys take half a minute under TCG; tests need none of them.
ssh_genkeytypes: [ed25519, ecdsa]
CFG
# Each boot must be a first boot: no machine id, no ssh host keys baked in.
: >"$rootfs/etc/machine-id"
rm -f "$rootfs"/etc/ssh/ssh_host_*
# Timers that would start apt downloads in the middle of a test boot.
chroot "$rootfs" systemctl mask apt-daily.timer apt-daily-upgrade.timer >/dev/null
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin

cp "$rootfs/boot/vmlinuz-$kver" "$OUT/vmlinuz"
cp "$rootfs/boot/initrd.img-$kver" "$OUT/initrd.img"

mkdir -p "$rootfs/boot/extlinux"
cat >"$rootfs/boot/extlinux/extlinux.conf" <<CONF
SERIAL 0 115200
DEFAULT debian
TIMEOUT 1
LABEL debian
  KERNEL /boot/vmlinuz-$kver
  INITRD /boot/initrd.img-$kver
  APPEND $cmdline
CONF

# The kernel's links in / follow upgrades; GRUB boots through them.
[ -e "$rootfs/vmlinuz" ] || ln -s "boot/vmlinuz-$kver" "$rootfs/vmlinuz"
[ -e "$rootfs/initrd.img" ] || ln -s "boot/initrd.img-$kver" "$rootfs/initrd.img"

step "EFI system partition (GRUB, removable path)"
esp_mib=32
esp=$work/esp.img
cat >"$work/grub.cfg" <<CFG
search --no-floppy --fs-uuid --set=root $uuid
linux /vmlinuz $cmdline
initrd /initrd.img
boot
CFG
grub-mkimage -O x86_64-efi -p /EFI/BOOT -c "$work/grub.cfg" -o "$work/BOOTX64.EFI" \
	part_msdos fat ext2 search search_fs_uuid linux boot all_video
mkfs.vfat -C -n BAINODE-ESP "$esp" $((esp_mib * 1024)) >/dev/null
mmd -i "$esp" ::/EFI ::/EFI/BOOT
mcopy -i "$esp" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI

step "ext4 file system and MBR disk (${SIZE_MIB} MiB)"
disk=$work/disk.raw
# ESP first, root last: growpart can then grow the root into a bigger disk.
offset=$(((1 + esp_mib) * 1024 * 1024))
truncate -s "${SIZE_MIB}M" "$disk"
printf 'label: dos\nstart=2048, size=%dMiB, type=ef\nstart=%d, type=83, bootable\n' \
	"$esp_mib" $((offset / 512)) | sfdisk --quiet "$disk"
dd if="$esp" of="$disk" bs=1M seek=1 conv=notrunc status=none
# syslinux 6.04 cannot read ext4 with 64bit block numbers.
mkfs.ext4 -q -F -L bainode-root -U "$uuid" -O ^64bit -d "$rootfs" \
	-E offset=$offset "$disk" $((SIZE_MIB - 1 - esp_mib))M

bootloader=false
mkdir -p "$mnt"
if loopdev=$(losetup --find --show --offset $offset "$disk" 2>/dev/null) &&
	mount -t ext4 "$loopdev" "$mnt" 2>/dev/null; then
	extlinux --install "$mnt/boot/extlinux" >/dev/null
	umount "$mnt"
	losetup -d "$loopdev"
	loopdev=
	mbr=/usr/lib/EXTLINUX/mbr.bin
	[ -f "$mbr" ] || mbr=/usr/lib/syslinux/mbr/mbr.bin
	dd if="$mbr" of="$disk" bs=440 count=1 conv=notrunc status=none
	bootloader=true
else
	echo "build-base: warning: no loop mount here, disk has no boot loader (use direct kernel boot)" >&2
	if [ -n "$loopdev" ]; then losetup -d "$loopdev"; loopdev=; fi
fi

step "convert to qcow2"
qemu-img convert -f raw -O qcow2 "$disk" "$OUT/disk.qcow2"

cat >"$OUT/base.json" <<JSON
{"kernel_version": "$kver", "root_uuid": "$uuid", "append": "$cmdline", "bootloader": $bootloader, "uefi": true}
JSON
step "done"
