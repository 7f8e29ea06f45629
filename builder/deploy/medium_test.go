package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// mediumISO writes an ISO9660 volume MediumVolumeID holding zst split into
// two parts, as a self-contained image-mode ISO does. xorriso writes it,
// so the agent's reader is checked against another writer than bainode's.
func mediumISO(t *testing.T, zst []byte) (string, []string) {
	t.Helper()
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Fatal("xorriso is not installed")
	}
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(tree, 0o755)
	half := len(zst) / 2
	parts := []string{"IMAGE000.ZST", "IMAGE001.ZST"}
	os.WriteFile(filepath.Join(tree, parts[0]), zst[:half], 0o644)
	os.WriteFile(filepath.Join(tree, parts[1]), zst[half:], 0o644)
	os.WriteFile(filepath.Join(tree, "README.TXT"), []byte("not the image\n"), 0o644)
	iso := filepath.Join(dir, "medium.iso")
	if out, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-V", MediumVolumeID, "-o", iso, tree).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	return iso, parts
}

// mediumConfig is a self-contained deploy's config for zst in parts.
func mediumConfig(zst []byte, parts []string) Config {
	sum := sha256.Sum256(zst)
	return Config{Node: "n1",
		Image:     Image{Medium: MediumVolumeID, Parts: parts, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(zst))},
		SeedFiles: map[string][]byte{"meta-data": []byte("instance-id: n1\nlocal-hostname: n1\n"), "user-data": []byte("#cloud-config\n{}\n")}}
}

// attach adds a device to a fake node: a /sys/block entry and its node.
func (n fakeNode) attach(t *testing.T, name, src string) {
	t.Helper()
	real := filepath.Join(filepath.Dir(n.sys), "devices", "ata1", name)
	os.MkdirAll(real, 0o755)
	st, _ := os.Stat(src)
	os.WriteFile(filepath.Join(real, "size"), []byte(strconv.FormatInt(st.Size()/512, 10)), 0o644)
	os.WriteFile(filepath.Join(real, "removable"), []byte("0\n"), 0o644)
	if err := os.Symlink(real, filepath.Join(n.sys, name)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(src)
	os.WriteFile(filepath.Join(n.dev, name), b, 0o644)
}

// TestAgentDeploysFromMedium: a self-contained deploy reads the image's
// parts off the boot medium (a CD, or a stick that is a disk like the
// target), writes the seed it carries, reports to nobody and reboots. The
// medium is never the target. Booted again with the medium still in, the
// agent finds the disk holds this deploy and leaves it alone, unless told
// to image it again.
func TestAgentDeploysFromMedium(t *testing.T) {
	raw, zst := testImage(t)
	iso, parts := mediumISO(t, zst)
	cfg := mediumConfig(zst, parts)
	for _, medium := range []string{"sr0", "vdb"} {
		t.Run(medium, func(t *testing.T) {
			n := newFakeNode(t, map[string]int64{"vda": 64 << 20})
			n.attach(t, medium, iso)
			err, rebooted, log := runAgent(t, cfg, n)
			if err != nil {
				t.Fatalf("deploy: %v\n%s", err, log)
			}
			if !rebooted {
				t.Error("no reboot after deploy")
			}
			for _, want := range []string{"reading the image from the boot medium", "nothing to report to"} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
			if medium == "vdb" && !strings.Contains(log, "vdb is the boot medium: not a target") {
				t.Errorf("the stick was not set aside:\n%s", log)
			}
			vda := filepath.Join(n.dev, "vda")
			disk, _ := os.ReadFile(vda)
			if !bytes.Equal(disk[512:len(raw)], raw[512:]) {
				t.Error("the disk does not hold the image past its MBR")
			}
			checkSfdisk(t, vda, "mbr")
			if b, _ := os.ReadFile(filepath.Join(n.dev, medium)); mediumVolumeID(filepath.Join(n.dev, medium)) != MediumVolumeID || len(b) == 0 {
				t.Error("the medium was written")
			}

			// Again, with the medium still attached: nothing is written.
			before, _ := os.Stat(vda)
			err, rebooted, log = runAgent(t, cfg, n)
			if !errors.Is(err, ErrDeployed) || rebooted {
				t.Fatalf("second boot: err %v, rebooted %v, want ErrDeployed and no reboot\n%s", err, rebooted, log)
			}
			after, _ := os.Stat(vda)
			if !after.ModTime().Equal(before.ModTime()) {
				t.Error("the second boot wrote the disk")
			}
			again := cfg
			again.Reimage = true
			if err, _, log := runAgent(t, again, n); err != nil {
				t.Fatalf("%s=1: %v\n%s", ReimageArg, err, log)
			}
		})
	}
}

// TestAgentMediumRefusals: a medium that is missing, or whose parts do
// not add up, fails before the disk is touched.
func TestAgentMediumRefusals(t *testing.T) {
	_, zst := testImage(t)
	iso, parts := mediumISO(t, zst)
	base := mediumConfig(zst, parts)
	for _, tc := range []struct {
		name   string
		attach bool
		edit   func(*Config)
		want   string
	}{
		{"no medium", false, func(*Config) {}, "no boot medium with volume ID BAINODE_DEPLOY"},
		{"missing part", true, func(c *Config) { c.Image.Parts = []string{"IMAGE000.ZST", "IMAGE009.ZST"} }, "no file IMAGE009.ZST"},
		{"short", true, func(c *Config) { c.Image.Parts = parts[:1] }, "the image's parts hold"},
		{"url and medium", true, func(c *Config) { c.Image.URL = "http://127.0.0.1:1/x" }, "both a URL and a medium"},
		{"no seed", true, func(c *Config) { c.SeedFiles = nil }, "no seed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newFakeNode(t, map[string]int64{"vda": 64 << 20})
			if tc.attach {
				n.attach(t, "sr0", iso)
			}
			cfg := base
			tc.edit(&cfg)
			err, rebooted, log := runAgent(t, cfg, n)
			if err == nil || !strings.Contains(err.Error(), tc.want) || rebooted {
				t.Fatalf("err %v (rebooted %v), want %q\n%s", err, rebooted, tc.want, log)
			}
			old, _ := os.ReadFile(filepath.Join(n.dev, "vda"))
			if old[0] != 0xeb {
				t.Error("the disk was touched")
			}
		})
	}
}

func TestMediumParts(t *testing.T) {
	for _, tc := range []struct {
		size int64
		want string
	}{
		{1, "IMAGE000.ZST"},
		{MaxPart, "IMAGE000.ZST"},
		{MaxPart + 1, "IMAGE000.ZST IMAGE001.ZST"},
		{3*MaxPart + 5, "IMAGE000.ZST IMAGE001.ZST IMAGE002.ZST IMAGE003.ZST"},
	} {
		if got := strings.Join(MediumParts(tc.size), " "); got != tc.want {
			t.Errorf("MediumParts(%d) = %s, want %s", tc.size, got, tc.want)
		}
	}
}
