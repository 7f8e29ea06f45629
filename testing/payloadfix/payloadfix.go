// Package payloadfix builds the inputs of an air-gapped payload for the
// Debian 12 test base (testing/qemu), shared by the VM tests of
// builder/payload and builder/bake:
//   - Debian 12's docker.io and the dependencies the base lacks, fetched on
//     the host with apt-get download (the guest has no way to fetch them);
//   - a docker-load tarball made here: one layer with Debian's static
//     busybox, the greeting as its command;
//   - a Python tarball in python-build-standalone's layout (see
//     pythonStandIn: it is a stand-in, not a real build).
//
// They are built once and cached under the user cache dir, keyed by a hash
// of their recipe (and of the base's), behind a file lock, like the base.
// The payload disk itself is built by each test with builder/payload (it
// cannot import that package from here: builder/payload's own tests use
// this one), so the cache never hides a change to the payload's format.
package payloadfix

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/fetch"
	"github.com/lablup/bainode/testing/qemu"
)

// The test image and what its one command prints.
const (
	TestImage = "bainode-test/hello:1"
	Greeting  = "hello from bainode"
	// PyRelease is a made-up python-build-standalone release tag for the
	// stand-in Python.
	PyRelease = "20000101"
)

// recipeVersion changes when the build below changes in a way the hash
// does not see.
const recipeVersion = "1"

// Fixture is a built (or cached) set of payload inputs.
type Fixture struct {
	Dir       string   `json:"-"`
	DebDir    string   `json:"-"` // docker.io, apparmor and what the base lacks of their dependencies
	ImageTar  string   `json:"-"` // docker-load tarball of TestImage
	PythonTar string   `json:"-"` // the stand-in Python
	PyVersion string   `json:"py_version"`
	Debs      []string `json:"debs"`
}

// RecipeHash identifies what Need builds; it names the cache directory.
func RecipeHash() string {
	h := sha256.New()
	for _, part := range []string{recipeVersion, qemu.RecipeHash(), TestImage, Greeting, PyRelease, wrapperScript} {
		fmt.Fprintf(h, "%d\n%s", len(part), part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Need returns the fixture, building it on a cache miss. A host that
// cannot (no apt lists, no Debian mirror) fails with CI=true, skips
// otherwise.
func Need(t testing.TB) Fixture {
	t.Helper()
	for tool, pkg := range map[string]string{"apt-get": "apt", "apt-cache": "apt", "dpkg-deb": "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			hostLacks(t, fmt.Sprintf("%s not found (Debian package %s)", tool, pkg))
		}
	}
	cache, err := qemu.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(cache, "payloadfix")
	dir := filepath.Join(root, RecipeHash()[:16])
	if f, err := load(dir); err == nil {
		return f
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	unlock, err := qemu.Lock(ctx, dir+".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if f, err := load(dir); err == nil {
		return f
	}
	tmp, err := os.MkdirTemp(root, ".build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	f := build(t, tmp)
	b, _ := json.Marshal(f)
	if err := os.WriteFile(filepath.Join(tmp, "fixture.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("payload fixture built in %s: %d .debs (%s), python %s", time.Since(start).Round(time.Second), len(f.Debs), strings.Join(f.Debs, " "), f.PyVersion)
	f, err = load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func load(dir string) (Fixture, error) {
	var f Fixture
	b, err := os.ReadFile(filepath.Join(dir, "fixture.json"))
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, err
	}
	f.Dir, f.DebDir = dir, filepath.Join(dir, "debs")
	f.ImageTar, f.PythonTar = filepath.Join(dir, "hello.tar"), filepath.Join(dir, "python.tar.gz")
	for _, p := range []string{f.DebDir, f.ImageTar, f.PythonTar} {
		if _, err := os.Stat(p); err != nil {
			return f, err
		}
	}
	return f, nil
}

// build writes debs/, hello.tar and python.tar.gz into dir.
func build(t testing.TB, dir string) Fixture {
	t.Helper()
	base, pyVersion := basePackages(t)
	debs := dockerDebs(t, base)
	aptDownload(t, filepath.Join(dir, "debs"), debs...)
	tools := filepath.Join(dir, "tools")
	aptDownload(t, tools, "busybox-static", "python3-pip-whl")
	defer os.RemoveAll(tools)
	busybox, err := os.ReadFile(filepath.Join(unpackDeb(t, glob1(t, tools, "busybox-static_*.deb")), "bin/busybox"))
	if err != nil {
		t.Fatal(err)
	}
	WriteDockerArchive(t, filepath.Join(dir, "hello.tar"), "docker.io/"+TestImage, // tagged as docker save writes it
		[]string{"/bin/busybox", "echo", Greeting},
		map[string][]byte{"bin/busybox": busybox, "bin/sh": []byte("->busybox")}, map[string]int64{"bin/busybox": 0o755})
	pipWheel := glob1(t, filepath.Join(unpackDeb(t, glob1(t, tools, "python3-pip-whl_*.deb")), "usr/share/python-wheels"), "pip-*.whl")
	pythonStandIn(t, filepath.Join(dir, "python.tar.gz"), pyVersion, pipWheel)
	return Fixture{PyVersion: pyVersion, Debs: debs}
}

// Cache imports the image and the Python into a fetch cache of the test's
// own, under the names `bainode payload` looks for (the caller has them
// from builder/payload: ImageArchiveName(TestImage), PythonAsset).
func (f Fixture) Cache(t testing.TB, imageName, pythonAsset string) *fetch.Cache {
	t.Helper()
	c, err := fetch.OpenCache(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Import(f.ImageTar, fetch.Artifact{Name: imageName, URL: "file:///test/hello.tar", Kind: "image"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Import(f.PythonTar, fetch.Artifact{Name: pythonAsset, URL: "file:///test/python.tar.gz", Kind: "python"}); err != nil {
		t.Fatal(err)
	}
	return c
}

// SiteYAML turns a site YAML (the vm-test example's settings) into one
// with Docker (without compose: Debian 12 has no compose plugin package),
// the Python and the agent's venv, and the test image, all from the
// payload.
func SiteYAML(t testing.TB, y, pyVersion string) string {
	t.Helper()
	for _, c := range []struct{ old, new string }{
		{"docker:\n  enabled: false\n  compose: false\n", "artifacts: payload\ndocker:\n  enabled: true\n  compose: false\n"},
		{"python:\n  enabled: false\n", fmt.Sprintf("python:\n  enabled: true\n  version: %s\n  release: %q\n  services: [agent]\n", pyVersion, PyRelease)},
		{"images:\n  pull: []\n", "images:\n  pull: [" + TestImage + "]\n"},
	} {
		if !strings.Contains(y, c.old) {
			t.Fatalf("the site has no %q", c.old)
		}
		y = strings.Replace(y, c.old, c.new, 1)
	}
	return y
}

// hostLacks fails with CI=true and skips otherwise: the host cannot reach
// its Debian mirror, or has no package lists.
func hostLacks(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s", msg)
	}
	t.Skipf("host cannot provide the Debian packages: %s", msg)
}
