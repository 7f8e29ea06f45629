package payload

import (
	"bytes"
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

	"github.com/lablup/bainode/builder/internal/testsrv"
	"github.com/lablup/bainode/testing/payloadfix"
)

// needTool fails (CI=true) or skips the test when a host program is missing.
func needTool(t testing.TB, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %s not found (Debian package %s)", tool, pkg)
		}
		t.Skipf("%s not found (Debian package %s)", tool, pkg)
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// makeDeb builds a real .deb with dpkg-deb: package name, version,
// architecture, Depends and the compression of its members (gzip, xz,
// zstd, none). It holds /usr/share/<name>/hello.
func makeDeb(t testing.TB, dir, name, version, arch, depends, comp string) string {
	t.Helper()
	return makeDebSized(t, dir, name, version, arch, depends, comp, 0)
}

// makeDebSized is makeDeb with a file of extra pseudo-random bytes in the
// package (which compression "none" keeps at that size).
func makeDebSized(t testing.TB, dir, name, version, arch, depends, comp string, extra int) string {
	t.Helper()
	needTool(t, "dpkg-deb", "dpkg")
	root := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "usr/share", name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/share", name, "hello"), []byte("hello from "+name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if extra > 0 {
		data := testsrv.RandomBytes(uint64(len(name)), extra)
		if err := os.WriteFile(filepath.Join(root, "usr/share", name, "data"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctl := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: bainode tests <tests@example.invalid>\n", name, version, arch)
	if depends != "" {
		ctl += "Depends: " + depends + "\n"
	}
	ctl += "Multi-Arch: foreign\nDescription: bainode payload test package\n A package made by the payload tests.\n .\n Second paragraph.\n"
	if err := os.WriteFile(filepath.Join(root, "DEBIAN/control"), []byte(ctl), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, fmt.Sprintf("%s_%s_%s.deb", name, strings.ReplaceAll(version, ":", "%3a"), arch))
	run(t, "dpkg-deb", "-Z"+comp, "--root-owner-group", "-b", root, out)
	return out
}

// e2fsck -fn must exit 0 and print nothing but its five passes and the
// summary: it exits 0 on some problems it only offers to fix (a bad resize
// inode, for one), so its output is read too.
var e2fsckOK = []*regexp.Regexp{
	regexp.MustCompile(`^e2fsck \d+\.\d+(\.\d+)? \(.*\)$`),
	regexp.MustCompile(`^Pass [1-5]: Checking (inodes, blocks, and sizes|directory structure|directory connectivity|reference counts|group summary information)$`),
	regexp.MustCompile(`^\S+: \d+/\d+ files \([\d.]+% non-contiguous\), \d+/\d+ blocks$`),
}

func e2fsckClean(t testing.TB, img string) {
	t.Helper()
	needTool(t, "e2fsck", "e2fsprogs")
	out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn %s: %v\n%s", img, err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		ok := false
		for _, re := range e2fsckOK {
			ok = ok || re.MatchString(line)
		}
		if !ok {
			t.Errorf("e2fsck -fn %s: unexpected line %q; whole output:\n%s", img, line, out)
		}
	}
}

// debugfsCat reads a file out of the image with e2fsprogs' debugfs.
func debugfsCat(t testing.TB, img, path string) []byte {
	t.Helper()
	needTool(t, "debugfs", "e2fsprogs")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("debugfs", "-R", "cat "+path, img)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("debugfs cat %s: %v\n%s", path, err, stderr.String())
	}
	if s := strings.TrimSpace(strings.TrimPrefix(stderr.String(), firstLine(stderr.String()))); s != "" {
		t.Errorf("debugfs cat %s: %s", path, s)
	}
	return stdout.Bytes()
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// blkid reports the label and type of the image, as the node's blkid -L will.
func blkidLabel(t testing.TB, img string) string {
	t.Helper()
	needTool(t, "blkid", "util-linux")
	return strings.TrimSpace(run(t, "blkid", "-o", "value", "-s", "LABEL", img)) + " " +
		strings.TrimSpace(run(t, "blkid", "-o", "value", "-s", "TYPE", img))
}

// mountRO loop-mounts the image read-only; it returns "" when it cannot
// (not root, no loop devices), after saying why.
func mountRO(t testing.TB, img string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Logf("not root: no loop mount")
		return ""
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop,ro", img, dir).CombinedOutput(); err != nil {
		t.Logf("mount -o loop,ro failed (%v): %s", err, out)
		return ""
	}
	t.Cleanup(func() {
		for i := 0; ; i++ {
			out, err := exec.Command("umount", dir).CombinedOutput()
			if err == nil {
				return
			}
			if i == 10 {
				t.Errorf("umount %s: %v: %s", dir, err, out)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	return dir
}

func fileSum(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkTree compares every file of a mounted payload against its manifest,
// and the manifest against the expected list of paths.
func checkTree(t testing.TB, dir string, m *Manifest) {
	t.Helper()
	for _, f := range m.Files {
		p := filepath.Join(dir, f.Path)
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", f.Path, err)
			continue
		}
		if fi.Size() != f.Size {
			t.Errorf("%s: %d bytes, manifest says %d", f.Path, fi.Size(), f.Size)
		}
		if got := fileSum(t, p); got != f.SHA256 {
			t.Errorf("%s: sha256 %s, manifest says %s", f.Path, got, f.SHA256)
		}
	}
}

func readManifestBytes(t testing.TB, b []byte) *Manifest {
	t.Helper()
	m, err := ReadManifest(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return m
}

// writeDockerArchive writes a docker-load tarball of one image (see
// payloadfix.WriteDockerArchive).
func writeDockerArchive(t testing.TB, path, ref string, cmd []string, files map[string][]byte, modes map[string]int64) {
	t.Helper()
	payloadfix.WriteDockerArchive(t, path, ref, cmd, files, modes)
}
