package seed_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/lablup/bainode/builder/internal/testenv"
	"github.com/lablup/bainode/builder/seed"
)

func files() fstest.MapFS {
	return fstest.MapFS{
		"user-data":      {Data: []byte("#cloud-config\nhostname: bai-test\n" + strings.Repeat("# padding line\n", 500))},
		"meta-data":      {Data: []byte("instance-id: bainode-test\nlocal-hostname: bai-test\n")},
		"network-config": {Data: []byte("version: 2\nethernets:\n  eth0:\n    dhcp4: true\n")},
		"vendor-data":    {Data: []byte{}},
	}
}

func blkid(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command(testenv.Need(t, "blkid"), "-p", "-o", "export", path).CombinedOutput()
	if err != nil {
		t.Fatalf("blkid %s: %v\n%s", path, err, out)
	}
	return string(out)
}

func TestWriteISO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "seed.iso")
	if err := seed.WriteISO(p, files()); err != nil {
		t.Fatal(err)
	}
	if got := blkid(t, p); !strings.Contains(got, "LABEL=cidata\n") || !strings.Contains(got, "TYPE=iso9660\n") {
		t.Errorf("blkid: got\n%s\nwant LABEL=cidata TYPE=iso9660", got)
	}
	isoinfo := testenv.Need(t, "isoinfo")
	for name, f := range files() {
		got, err := exec.Command(isoinfo, "-R", "-x", "/"+name, "-i", p).Output()
		if err != nil {
			t.Fatalf("isoinfo -x /%s: %v", name, err)
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s: isoinfo returned %d bytes, want the %d written", name, len(got), len(f.Data))
		}
	}
	d, err := exec.Command(isoinfo, "-d", "-i", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(d), "Rock Ridge signatures") || !strings.Contains(string(d), "NO Joliet") {
		t.Errorf("isoinfo -d: want Rock Ridge and no Joliet, got\n%s", d)
	}
	ls, err := exec.Command(testenv.Need(t, "xorriso"), "-indev", p, "-find", "/", "-type", "f").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v\n%s", err, ls)
	}
	for name := range files() {
		if !strings.Contains(string(ls), "'/"+name+"'") {
			t.Errorf("xorriso does not list /%s:\n%s", name, ls)
		}
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("seed mode: got %v, want 0600 (seeds carry hashes and keys)", fi.Mode().Perm())
	}
}

func TestWriteFAT(t *testing.T) {
	p := filepath.Join(t.TempDir(), "seed.img")
	if err := seed.WriteFAT(p, files()); err != nil {
		t.Fatal(err)
	}
	if got := blkid(t, p); !strings.Contains(got, "LABEL=CIDATA\n") || !strings.Contains(got, "TYPE=vfat\n") {
		t.Errorf("blkid: got\n%s\nwant LABEL=CIDATA TYPE=vfat", got)
	}
	if fi, _ := os.Stat(p); fi.Size() != 128*1024 {
		t.Errorf("size: got %d, want 128 KiB like cloud-localds", fi.Size())
	}
	out, err := exec.Command(testenv.Need(t, "fsck.fat"), "-n", p).CombinedOutput()
	// fsck.fat exits 0 even after listing some problems: read what it says.
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || len(lines) != 2 || !strings.Contains(lines[1], "files,") {
		t.Errorf("fsck.fat -n: %v\n%s", err, out)
	}
	mdir, err := exec.Command(testenv.Need(t, "mdir"), "-i", p, "::").CombinedOutput()
	if err != nil || !strings.Contains(string(mdir), "is CIDATA") {
		t.Errorf("mdir: %v\n%s", err, mdir)
	}
	for name, f := range files() {
		got, err := exec.Command("mcopy", "-n", "-i", p, "::"+name, "-").Output()
		if err != nil {
			t.Fatalf("mcopy %s: %v", name, err)
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s: mcopy returned %d bytes, want %d", name, len(got), len(f.Data))
		}
	}
}

func TestFATTooBig(t *testing.T) {
	fs := files()
	fs["user-data"] = &fstest.MapFile{Data: bytes.Repeat([]byte("x"), 9<<20)}
	err := seed.WriteFAT(filepath.Join(t.TempDir(), "seed.img"), fs)
	if err == nil || !strings.Contains(err.Error(), "use the iso format") {
		t.Fatalf("got %v, want an error that points to the iso format", err)
	}
}

func TestNoMetaData(t *testing.T) {
	fs := files()
	delete(fs, "meta-data")
	dir := t.TempDir()
	if err := seed.WriteISO(filepath.Join(dir, "seed.iso"), fs); err == nil || !strings.Contains(err.Error(), "meta-data") {
		t.Fatalf("got %v, want an error about meta-data", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a failed write left %d file(s) behind", len(ents))
	}
}

// Equal inputs must give equal bytes, whatever the clock says, and
// SOURCE_DATE_EPOCH must set the stamped time.
func TestReproducible(t *testing.T) {
	for _, f := range []seed.Format{seed.ISO, seed.FAT} {
		t.Run(string(f), func(t *testing.T) {
			dir := t.TempDir()
			write := func(name string) []byte {
				p := filepath.Join(dir, name)
				if err := seed.Write(p, files(), f); err != nil {
					t.Fatal(err)
				}
				b, _ := os.ReadFile(p)
				return b
			}
			a := write("a")
			// Both go-diskfs clocks tick in seconds; cross one.
			waitNextSecond()
			b := write("b")
			if !bytes.Equal(a, b) {
				t.Fatalf("two writes of the same files differ")
			}
			t.Setenv("SOURCE_DATE_EPOCH", "1700000000") // 2023-11-14 22:13:20 UTC
			c := write("c")
			if bytes.Equal(a, c) {
				t.Fatalf("SOURCE_DATE_EPOCH changed nothing")
			}
			if f == seed.ISO && !bytes.Contains(c, []byte("2023111422132000")) {
				t.Errorf("the volume descriptor does not carry SOURCE_DATE_EPOCH's date")
			}
		})
	}
}
