package iso

import (
	"crypto/md5"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestInsertArgs(t *testing.T) {
	grub := "menuentry x {\n\tlinux\t/casper/vmlinuz  quiet ---\n\tinitrd /casper/initrd\n}\nmenuentry y {\n\tlinux /casper/vmlinuz nomodeset\n}\n"
	got, n := insertArgs([]byte(grub), []string{"linux"}, KernelArgs(), grubQuote)
	want := "menuentry x {\n\tlinux\t/casper/vmlinuz  quiet autoinstall 'ds=nocloud;s=/cdrom/nocloud/' ---\n\tinitrd /casper/initrd\n}\nmenuentry y {\n\tlinux /casper/vmlinuz nomodeset autoinstall 'ds=nocloud;s=/cdrom/nocloud/'\n}\n"
	if string(got) != want || n != 2 {
		t.Errorf("grub: %d lines changed, got\n%s\nwant\n%s", n, got, want)
	}
	isolinux := "label live\r\n  append   initrd=/casper/initrd quiet  ---\r\n"
	got, n = insertArgs([]byte(isolinux), []string{"append"}, KernelArgs(), func(s string) string { return s })
	if want := "label live\r\n  append   initrd=/casper/initrd quiet autoinstall ds=nocloud;s=/cdrom/nocloud/ ---\r\n"; string(got) != want || n != 1 {
		t.Errorf("isolinux: %d lines changed, got %q want %q", n, got, want)
	}
}

func TestGrubQuote(t *testing.T) {
	for in, want := range map[string]string{
		"autoinstall":      "autoinstall",
		"ds=nocloud;s=/x/": "'ds=nocloud;s=/x/'",
		"a'b;c":            `'a'\''b;c'`,
	} {
		if got := grubQuote(in); got != want {
			t.Errorf("grubQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRegenMD5(t *testing.T) {
	sum := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	old := sum("a") + "  ./boot/grub/grub.cfg\n" + sum("b") + "  ./casper/vmlinuz\n" + sum("c") + "  ./boot.catalog\n"
	changed := map[string][]byte{"boot/grub/grub.cfg": []byte("new"), "nocloud/user-data": []byte("ud"), "isolinux/txt.cfg": []byte("t")}
	existed := map[string]bool{"boot/grub/grub.cfg": true, "casper/vmlinuz": true, "boot.catalog": true, "isolinux/txt.cfg": true}
	got := string(regenMD5([]byte(old), changed, existed, nil))
	want := sum("new") + "  ./boot/grub/grub.cfg\n" + sum("b") + "  ./casper/vmlinuz\n" + sum("ud") + "  ./nocloud/user-data\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// A tree written from scratch (the shape --mode image will use): files,
// a BIOS and an appended EFI entry, GPT; xorriso reads it back.
func TestWriteFromScratch(t *testing.T) {
	dir := t.TempDir()
	esp := filepath.Join(dir, "esp.img")
	espData := make([]byte, 64*1024)
	copy(espData[4096:], "GRUB    CFG") // a FAT directory entry's name
	copy(espData[5000:], "GRUB    CFG") // not at an entry boundary
	if err := os.WriteFile(esp, espData, 0o644); err != nil {
		t.Fatal(err)
	}
	boot := make([]byte, 4096)
	spec := Spec{
		VolumeID: "BAINODE_TEST",
		Files: []File{
			{Path: "boot/core.img", Content: Content{Data: boot}},
			{Path: ".disk/info", Content: Content{Data: []byte("x")}},
			{Path: "link", Link: "boot/core.img"},
		},
		Catalog:  "boot.catalog",
		Boot:     []BootEntry{{Platform: BIOS, Path: "boot/core.img", LoadSize: 4, InfoTable: true, GRUB2Info: true}, {Platform: EFI, Appended: 1, LoadSize: 128}},
		Appended: []Content{{Path: esp, Size: -1}},
		System: SystemArea{Scheme: GPT, Patch: PatchGRUB2, Code: make([]byte, 432), Partitions: []Partition{
			{Extent: ExtentISO, GPTType: GUIDBasicData, GPTName: "ISO9660"},
			{Extent: ExtentBootImage, BootEntry: 1, GPTType: GUIDESP, GPTName: "ESP"},
		}},
		Epoch: testEpoch,
	}
	out := filepath.Join(dir, "x.iso")
	lay, err := Write(spec, out)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Boot) != 2 || !m.Boot[0].InfoTable || !m.Boot[0].GRUB2Info || m.Boot[1].LBA != lay.Appended[0].LBA || m.Area.Scheme != GPT {
		t.Errorf("read back: %s, %+v", m.Describe(), m.Boot)
	}
	if n, err := espGrubCfg(m); err != nil || n != 1 {
		t.Errorf("espGrubCfg: %d, %v; want 1", n, err)
	}
	names := map[string]File{}
	for _, f := range m.Files {
		names[f.Path] = f
	}
	if names["link"].Link != "boot/core.img" || names[".disk/info"].Content.Size != 1 {
		t.Errorf("tree read back: %+v", m.Files)
	}
	if _, err := exec.LookPath("xorriso"); err != nil {
		skipOrFail(t, "xorriso not found (package xorriso)")
	}
	rep, err := exec.Command("xorriso", "-indev", out, "-report_el_torito", "plain", "-report_system_area", "plain").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v\n%s", err, rep)
	}
	for _, w := range []string{"grub2-boot-info", "boot-info-table", "protective-msdos-label", "GPT partname local :   2  ESP"} {
		if !strings.Contains(string(rep), w) {
			t.Errorf("xorriso report lacks %q:\n%s", w, rep)
		}
	}
}
