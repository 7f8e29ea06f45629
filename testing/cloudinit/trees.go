// Package cloudinit runs rendered cloud-init data through the real code of
// every cloud-init version bainode's targets ship: the Ubuntu source trees in
// ../shared/cloud-init (next to the repository) or $BAINODE_CLOUDINIT_TREES,
// on Debian's python3. Tests use Trees, then Tree.Schema or Tree.Stages.
package cloudinit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// EnvTrees names the folder of tree tarballs and their SHA256SUMS.
const EnvTrees = "BAINODE_CLOUDINIT_TREES"

// Python is Debian's interpreter: a python3 earlier on PATH may lack the
// python3-* packages cloud-init imports.
const Python = "/usr/bin/python3"

//go:embed shim.py
var shim []byte

// Tree is one unpacked cloud-init source tree.
type Tree struct {
	Name    string // focal-ga, noble-latest, ...
	Package string // packaged version, e.g. "20.1-10-g71af48df-0ubuntu5"
	Version string // upstream version, e.g. "20.1"
	Dir     string // the tree (holds cloudinit/)
	path    string // PYTHONPATH
	shim    string
	sum     string // the tarball's sha256
	libs    string // Python packages 20.1 needs before Debian's, or ""
}

var (
	once    sync.Once
	trees   []*Tree
	treeErr error
	missing string
)

// Trees returns every tree, unpacked once per run into a cache keyed by the
// tarball's sha256. A missing folder skips the test, or fails it when CI=true.
func Trees(t testing.TB) []*Tree {
	t.Helper()
	once.Do(func() { trees, missing, treeErr = load() })
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cloud-init trees: %s (set %s)", missing, EnvTrees)
		}
		t.Skipf("cloud-init trees: %s; set %s to run the matrix", missing, EnvTrees)
	}
	if treeErr != nil {
		t.Fatalf("cloud-init trees: %v", treeErr)
	}
	if _, err := os.Stat(Python); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v", Python, err)
		}
		t.Skipf("%s missing", Python)
	}
	return trees
}

// Lookup returns the tree of a version as targets.yaml lists it: a packaged
// version, or a bare upstream one (Debian's package revision moves), or nil.
func Lookup(all []*Tree, v string) *Tree {
	for _, tr := range all {
		if tr.Package == v || (!strings.Contains(v, "-") && tr.Version == v) {
			return tr
		}
	}
	return nil
}

// source is the folder of tarballs: $BAINODE_CLOUDINIT_TREES, else
// ../shared/cloud-init beside the module root.
func source() (string, error) {
	if d := os.Getenv(EnvTrees); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(dir), "shared", "cloud-init"), nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("no go.mod above the test's directory")
		}
		dir = up
	}
}

func load() ([]*Tree, string, error) {
	src, err := source()
	if err != nil {
		return nil, "", err
	}
	sumsPath := filepath.Join(src, "SHA256SUMS")
	f, err := os.Open(sumsPath)
	if err != nil {
		return nil, fmt.Sprintf("no %s", sumsPath), nil
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fs := strings.Fields(sc.Text())
		if len(fs) != 2 {
			return nil, "", fmt.Errorf("%s:%d: want \"sha256  file\"", sumsPath, n)
		}
		sums[strings.TrimPrefix(fs[1], "*")] = fs[0]
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return nil, "", err
	}
	cache = filepath.Join(cache, "bainode", "cloudinit")
	libsSum, ok := sums["focal-python-libs.tar.xz"]
	if !ok {
		return nil, "", fmt.Errorf("%s: no focal-python-libs.tar.xz", sumsPath)
	}
	libs, err := unpack(filepath.Join(src, "focal-python-libs.tar.xz"), libsSum, cache)
	if err != nil {
		return nil, "", err
	}
	libs = filepath.Join(libs, "focal-libs")
	shimPath := filepath.Join(cache, fmt.Sprintf("shim-%x.py", sha256.Sum256(shim)))
	if err := writeFile(shimPath, shim); err != nil {
		return nil, "", err
	}
	var out []*Tree
	for file, sum := range sums {
		name, ok := strings.CutPrefix(file, "cloud-init-")
		if !ok {
			continue
		}
		name = strings.TrimSuffix(name, ".tar.xz")
		dir, err := unpack(filepath.Join(src, file), sum, cache)
		if err != nil {
			return nil, "", err
		}
		tr := &Tree{Name: name, Dir: filepath.Join(dir, name), shim: shimPath, sum: sum}
		tr.path = tr.Dir
		if tr.Package, err = packaged(tr.Dir); err != nil {
			return nil, "", err
		}
		tr.Version, _, _ = strings.Cut(tr.Package, "-")
		if err := stampDownstream(tr.Dir, tr.Package); err != nil {
			return nil, "", err
		}
		if tr.Version == "20.1" { // 20.1 needs Jinja2 2.x, which Debian 12 lacks
			tr.path += ":" + libs
			tr.libs = libs
		}
		out = append(out, tr)
	}
	// Debian's own package, from dist-packages (no PYTHONPATH).
	if b, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "cloud-init").Output(); err == nil && len(b) > 0 {
		pkg := string(b)
		v, _, _ := strings.Cut(pkg, "-")
		out = append(out, &Tree{Name: "debian", Package: pkg, Version: v, shim: shimPath})
	}
	return out, "", nil
}

// packaged reads the version of the tree's package from debian/changelog.
func packaged(dir string) (string, error) {
	f, err := os.Open(filepath.Join(dir, "debian", "changelog"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	_, rest, ok1 := strings.Cut(line, "(")
	v, _, ok2 := strings.Cut(rest, ")")
	if !ok1 || !ok2 {
		return "", fmt.Errorf("%s/debian/changelog:1: no (version)", dir)
	}
	return v, nil
}

// stampDownstream does what debian/rules does to the installed
// version.py of the meson-era trees (jammy, noble, resolute latest): it
// replaces @DOWNSTREAM_VERSION@ with the packaged version, which
// `cloud-init --version` prints (else "@MISSING_MESON_BUILD_ARTIFACT@").
func stampDownstream(dir, pkg string) error {
	p := filepath.Join(dir, "cloudinit", "version.py")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if !bytes.Contains(b, []byte("@DOWNSTREAM_VERSION@")) {
		return nil
	}
	b = bytes.ReplaceAll(b, []byte("@DOWNSTREAM_VERSION@"), []byte(pkg))
	tmp := fmt.Sprintf("%s.%d.tmp", p, os.Getpid())
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// unpack verifies a tarball against its sum and extracts it once into
// cache/<sha256>; a later run finds it there.
func unpack(tarball, sum, cache string) (string, error) {
	dst := filepath.Join(cache, sum)
	if _, err := os.Stat(filepath.Join(dst, ".done")); err == nil {
		return dst, nil
	}
	f, err := os.Open(tarball)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return "", fmt.Errorf("%s: sha256 %s, SHA256SUMS says %s", tarball, got, sum)
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cache, ".unpack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if out, err := exec.Command("tar", "-xJf", tarball, "-C", tmp).CombinedOutput(); err != nil {
		return "", fmt.Errorf("tar -xJf %s: %v\n%s", tarball, err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".done"), nil, 0o644); err != nil {
		return "", err
	}
	os.RemoveAll(dst) // a half-made one from a killed run
	if err := os.Rename(tmp, dst); err != nil {
		return "", err
	}
	return dst, nil
}

func writeFile(path string, b []byte) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// VersionLess compares upstream versions numerically ("22.4" < "22.10").
func VersionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		var x, y int
		fmt.Sscanf(as[i], "%d", &x)
		fmt.Sscanf(bs[i], "%d", &y)
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}
