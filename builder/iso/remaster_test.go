package iso

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/autoinstall"
)

var testEpoch = time.Date(2024, 2, 20, 12, 0, 0, 0, time.UTC)

func testSeed() Seed {
	ud, err := autoinstall.Wrap("ubuntu-20.04", []byte("#cloud-config\nhostname: bai-a01\nusers:\n  - name: bai\n    uid: 1100\n"), nil)
	if err != nil {
		panic(err)
	}
	return Seed{UserData: ud, MetaData: []byte("instance-id: bai-a01-autoinstall\n")}
}

type remastered struct {
	src, out string
	res      AutoinstallResult
}

func remasterFixture(t *testing.T, src string) remastered {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.iso")
	res, err := RemasterAutoinstall(src, out, testSeed(), testEpoch)
	if err != nil {
		t.Fatalf("remaster %s: %v", src, err)
	}
	t.Logf("source layout: %s; changed: %v; notes: %v", res.Source, res.Changed, res.Notes)
	return remastered{src: src, out: out, res: res}
}

func TestRemasterLayouts(t *testing.T) {
	fx := needFixtures(t)
	for _, tc := range []struct {
		name, src string
		scheme    Scheme
		patch     CodePatch
		appended  bool
	}{
		{"focal", fx.Focal, MBR, PatchIsolinux, false},
		{"jammy", fx.Jammy, GPT, PatchGRUB2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := remasterFixture(t, tc.src)
			src, err := Inspect(r.src)
			if err != nil {
				t.Fatal(err)
			}
			out, err := Inspect(r.out)
			if err != nil {
				t.Fatal(err)
			}
			spec, _, err := src.Replay(nil, testEpoch)
			if err != nil {
				t.Fatal(err)
			}
			if spec.System.Scheme != tc.scheme || spec.System.Patch != tc.patch {
				t.Errorf("source detected as %v/%v, want %v/%v", spec.System.Scheme, spec.System.Patch, tc.scheme, tc.patch)
			}
			if got := len(spec.Appended) > 0; got != tc.appended {
				t.Errorf("appended ESP detected: %v, want %v", got, tc.appended)
			}
			checkSameLayout(t, src, out)
			checkXorrisoAgrees(t, r)
			checkFiles(t, src, out, r.res.Changed)
			checkMD5(t, out)
			checkArgs(t, out)

			// Same inputs, same bytes; a second later, so that any stamp
			// taken from the clock would differ.
			time.Sleep(1100 * time.Millisecond)
			again := filepath.Join(t.TempDir(), "again.iso")
			if _, err := RemasterAutoinstall(r.src, again, testSeed(), testEpoch); err != nil {
				t.Fatal(err)
			}
			if a, b := fileSHA(t, r.out), fileSHA(t, again); a != b {
				t.Errorf("two remasters of the same inputs differ: %s vs %s", a, b)
			}
		})
	}
}

// checkSameLayout: the output has the source's kind of entries, patches
// and system area, and the appended ESP is byte-identical.
func checkSameLayout(t *testing.T, src, out *Medium) {
	t.Helper()
	if out.Describe() == "" || len(out.Boot) != len(src.Boot) {
		t.Fatalf("output boot entries %d, source %d", len(out.Boot), len(src.Boot))
	}
	for i := range src.Boot {
		s, o := src.Boot[i], out.Boot[i]
		if s.Platform != o.Platform || s.Path != o.Path || s.InfoTable != o.InfoTable || s.GRUB2Info != o.GRUB2Info || s.Sectors != o.Sectors {
			t.Errorf("boot entry %d: source %+v, output %+v", i, s, o)
		}
		if s.Path == "" { // appended image: byte-identical
			a := readAt(t, src.Path, int64(s.LBA)*Block, s.Size)
			b := readAt(t, out.Path, int64(o.LBA)*Block, o.Size)
			if !bytes.Equal(a, b) {
				t.Errorf("boot entry %d: appended image differs from the source's", i)
			}
		}
	}
	if src.Area.Scheme != out.Area.Scheme || !bytes.Equal(src.Area.Code, out.Area.Code) {
		t.Errorf("system area: source %v, output %v (or boot code differs)", src.Area.Scheme, out.Area.Scheme)
	}
	if src.Area.ForceBoot != out.Area.ForceBoot {
		t.Errorf("forced active MBR entry: source %v, output %v", src.Area.ForceBoot, out.Area.ForceBoot)
	}
}

// checkXorrisoAgrees reads the output with xorriso, an independent reader,
// and compares its report with the layout bainode wrote.
func checkXorrisoAgrees(t *testing.T, r remastered) {
	t.Helper()
	rep, err := exec.Command("xorriso", "-indev", r.out, "-report_el_torito", "plain", "-report_system_area", "plain").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v\n%s", err, rep)
	}
	report := string(rep)
	lay := r.res.Layout
	out, err := Inspect(r.out)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i, e := range out.Boot {
		pl := map[Platform]string{BIOS: "BIOS", EFI: "UEFI"}[e.Platform]
		want = append(want, fmt.Sprintf(`El Torito boot img : +%d +%s +y +none +0x0000 +0x00 +%d +%d\n`, i+1, pl, e.Sectors, lay.Boot[i].LBA))
		if e.Path != "" {
			want = append(want, fmt.Sprintf(`El Torito img path : +%d +/%s\n`, i+1, regexp.QuoteMeta(e.Path)))
		}
		var opts []string
		if e.InfoTable {
			opts = append(opts, "boot-info-table")
		}
		if e.GRUB2Info {
			opts = append(opts, "grub2-boot-info")
		}
		if len(opts) > 0 {
			want = append(want, fmt.Sprintf(`El Torito img opts : +%d +%s`, i+1, strings.Join(opts, " ")))
		}
	}
	sectors := lay.Size / 512
	switch out.Area.Scheme {
	case MBR:
		want = append(want, `System area summary: MBR isohybrid`,
			fmt.Sprintf(`MBR partition +: +1 +0x80 +0x00 +0 +%d\n`, sectors))
		for i, e := range out.Boot {
			if e.Platform == EFI {
				want = append(want, fmt.Sprintf(`MBR partition +: +2 +0x00 +0xef +%d +%d\n`, lay.Boot[i].LBA*4, (lay.Boot[i].Size+511)/512))
			}
		}
	case GPT:
		want = append(want, `System area summary: MBR protective-msdos-label grub2-mbr`,
			fmt.Sprintf(`MBR partition +: +1 +0x00 +0xee +1 +%d\n`, sectors-1),
			fmt.Sprintf(`GPT start and size : +1 +64 +%d\n`, int64(lay.VolumeBlocks)*4-64),
			fmt.Sprintf(`GPT start and size : +2 +%d +%d\n`, lay.Appended[0].LBA*4, lay.Appended[0].Size/512),
			`GPT type GUID +: +2 +28732ac11ff8d211ba4b00a0c93ec93b`)
	}
	for _, w := range want {
		if !regexp.MustCompile(w).MatchString(report) {
			t.Errorf("xorriso report lacks %q:\n%s", w, report)
		}
	}
	if lay.Size%Block != 0 {
		t.Errorf("image size %d is not a multiple of 2048", lay.Size)
	}
}

// checkFiles: every source file is in the output with the same bytes,
// except the ones bainode changed; the boot images differ only in their
// patched fields.
func checkFiles(t *testing.T, src, out *Medium, changed []string) {
	t.Helper()
	isChanged := map[string]bool{}
	for _, p := range changed {
		isChanged[p] = true
	}
	outFiles := map[string]File{}
	for _, f := range out.Files {
		outFiles[f.Path] = f
	}
	bootImg := map[string]bool{}
	for _, e := range src.Boot {
		bootImg[e.Path] = true
	}
	for _, f := range src.Files {
		o, ok := outFiles[f.Path]
		if !ok {
			t.Errorf("%s: missing from the output", f.Path)
			continue
		}
		if f.Path == src.Catalog { // rewritten for the new layout
			continue
		}
		if f.Dir || f.Link != "" || isChanged[f.Path] {
			if f.Link != o.Link {
				t.Errorf("%s: link %q, source %q", f.Path, o.Link, f.Link)
			}
			continue
		}
		a := readAt(t, src.Path, f.Content.Offset, f.Content.Size)
		b := readAt(t, out.Path, o.Content.Offset, o.Content.Size)
		if bootImg[f.Path] {
			for _, r := range [][2]int{{8, 64}, {2548, 2556}} {
				if len(a) >= r[1] && len(b) >= r[1] {
					copy(a[r[0]:r[1]], make([]byte, r[1]-r[0]))
					copy(b[r[0]:r[1]], make([]byte, r[1]-r[0]))
				}
			}
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: differs from the source but bainode did not change it", f.Path)
		}
	}
	if _, ok := outFiles[".disk/info"]; !ok {
		t.Errorf("/.disk/info lost")
	}
}

func checkMD5(t *testing.T, out *Medium) {
	t.Helper()
	files := map[string]File{}
	for _, f := range out.Files {
		files[f.Path] = f
	}
	list := readAt(t, out.Path, files["md5sum.txt"].Content.Offset, files["md5sum.txt"].Content.Size)
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		sum, p, _ := strings.Cut(l, "  ")
		p = strings.TrimPrefix(p, "./")
		f, ok := files[p]
		if !ok {
			t.Errorf("md5sum.txt lists %s, which is not on the medium", p)
			continue
		}
		got := md5.Sum(readAt(t, out.Path, f.Content.Offset, f.Content.Size))
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("md5sum.txt: %s does not match", p)
		}
		if md5Excluded(p, nil) {
			t.Errorf("md5sum.txt lists %s, which Ubuntu leaves out", p)
		}
		n++
	}
	for _, p := range []string{"nocloud/user-data", "boot/grub/grub.cfg", "casper/vmlinuz"} {
		if !strings.Contains(string(list), "./"+p+"\n") {
			t.Errorf("md5sum.txt lacks %s", p)
		}
	}
	if n < 5 {
		t.Errorf("md5sum.txt has only %d entries", n)
	}
}

func checkArgs(t *testing.T, out *Medium) {
	t.Helper()
	for _, f := range out.Files {
		switch f.Path {
		case "boot/grub/grub.cfg", "isolinux/txt.cfg":
			b := string(readAt(t, out.Path, f.Content.Offset, f.Content.Size))
			want := "autoinstall 'ds=nocloud;s=/cdrom/nocloud/' ---"
			if f.Path == "isolinux/txt.cfg" {
				want = "autoinstall ds=nocloud;s=/cdrom/nocloud/ ---"
			}
			if !strings.Contains(b, want) {
				t.Errorf("%s lacks %q:\n%s", f.Path, want, b)
			}
		}
	}
}

func readAt(t *testing.T, p string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatalf("%s: read %d bytes at %d: %v", p, n, off, err)
	}
	return b
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
