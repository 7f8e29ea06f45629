#!/bin/sh
# Builds stand-ins of Ubuntu's live-server ISOs from Debian packages, with
# xorriso the way Ubuntu's own build does:
#   focal: isolinux + boot/grub/efi.img as a file, isohybrid MBR (20.04)
#   jammy: GRUB eltorito.img with grub2 boot info + appended ESP, GPT (22.04+)
# Inputs (environment): OUT (directory), KERNEL, INITRD. The ESP holds
# Debian's signed shim and CD GRUB, so Secure Boot works as on Ubuntu's.
set -eu
cd "$OUT"

tree() { # $1: dir, $2: series label
	mkdir -p "$1/.disk" "$1/casper" "$1/boot/grub" "$1/pool/main"
	printf 'Ubuntu-Server %s "bainode fixture" - Release amd64 (20240101)' "$2" >"$1/.disk/info"
	printf 'full_cd/single\n' >"$1/.disk/cd_type"
	cp "$KERNEL" "$1/casper/vmlinuz"
	cp "$INITRD" "$1/casper/initrd"
	printf 'bainode-fixture 1.0\n' >"$1/casper/filesystem.manifest"
	ln -s . "$1/ubuntu"
	cat >"$1/boot/grub/grub.cfg" <<'CFG'
set timeout=1
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
menuentry "Try or Install Ubuntu Server" {
	set gfxpayload=keep
	linux	/casper/vmlinuz  ---
	initrd	/casper/initrd
}
CFG
	cp "$1/boot/grub/grub.cfg" "$1/boot/grub/loopback.cfg"
}

esp() { # $1: image
	rm -f "$1"
	mkfs.vfat -C -n ESP "$1" 8192 >/dev/null
	mmd -i "$1" ::/EFI ::/EFI/boot
	mcopy -i "$1" /usr/lib/shim/shimx64.efi.signed ::/EFI/boot/bootx64.efi
	mcopy -i "$1" /usr/lib/shim/mmx64.efi.signed ::/EFI/boot/mmx64.efi
	mcopy -i "$1" /usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed ::/EFI/boot/grubx64.efi
}

md5s() { # $1: dir; Ubuntu's exclusions
	(cd "$1" && find . -type f ! -name md5sum.txt ! -path ./isolinux/isolinux.bin ! -path ./isolinux/boot.cat ! -path './boot/grub/i386-pc/*' \
		! -path './boot.catalog' ! -path './EFI/*' | LC_ALL=C sort | xargs md5sum >md5sum.txt)
}

# 20.04
rm -rf focal && tree focal "20.04.6 LTS"
mkdir -p focal/isolinux
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 focal/isolinux/
cat >focal/isolinux/isolinux.cfg <<'CFG'
serial 0 115200
default live
prompt 0
timeout 1
include txt.cfg
CFG
cat >focal/isolinux/txt.cfg <<'CFG'
default live
label live
  menu label ^Install Ubuntu Server
  kernel /casper/vmlinuz
  append   initrd=/casper/initrd quiet  ---
CFG
esp focal/boot/grub/efi.img
md5s focal
xorriso -as mkisofs -r -V 'Ubuntu-Server 20.04.6 LTS amd64' -J -joliet-long -l \
	-isohybrid-mbr /usr/lib/ISOLINUX/isohdpfx.bin \
	-c isolinux/boot.cat -b isolinux/isolinux.bin -no-emul-boot -boot-load-size 4 -boot-info-table \
	-eltorito-alt-boot -e boot/grub/efi.img -no-emul-boot -isohybrid-gpt-basdat \
	-o focal.iso focal 2>xorriso-focal.log

# 22.04/24.04
rm -rf jammy && tree jammy "22.04.4 LTS"
mkdir -p jammy/boot/grub/i386-pc
grub-mkimage -O i386-pc-eltorito -p /boot/grub -o jammy/boot/grub/i386-pc/eltorito.img \
	biosdisk iso9660 part_msdos part_gpt normal configfile linux search search_fs_file echo test serial terminal
esp jammy-esp.img
md5s jammy
xorriso -as mkisofs -r -V 'Ubuntu-Server 22.04.4 LTS amd64' -J -joliet-long -l \
	--grub2-mbr /usr/lib/grub/i386-pc/boot_hybrid.img -partition_offset 16 --mbr-force-bootable \
	-append_partition 2 28732ac11ff8d211ba4b00a0c93ec93b jammy-esp.img -appended_part_as_gpt \
	-iso_mbr_part_type a2a0d0ebe5b9334487c068b6b72699c7 \
	-c /boot.catalog -b /boot/grub/i386-pc/eltorito.img -no-emul-boot -boot-load-size 4 -boot-info-table --grub2-boot-info \
	-eltorito-alt-boot -e '--interval:appended_partition_2:::' -no-emul-boot \
	-o jammy.iso jammy 2>xorriso-jammy.log
rm -rf focal jammy jammy-esp.img
