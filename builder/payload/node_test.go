package payload

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/fetch"
	"github.com/lablup/bainode/builder/spec"
)

func parseNodes(t *testing.T, y string) []*spec.Node {
	t.Helper()
	s, err := spec.Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	var ns []*spec.Node
	for i := range s.Nodes {
		ns = append(ns, &s.Nodes[i])
	}
	return ns
}

// ForNodes takes the Python from the cache by asset name, .debs from the
// lock (via the cache) and from --debs, images from --images by tag or from
// the cache by name; each shared item once; every missing one named.
func TestForNodes(t *testing.T) {
	src := t.TempDir()
	cache, err := fetch.OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	nodes := parseNodes(t, `version: 1
artifacts: payload
python: {version: 3.12.4, release: "20240713"}
images:
  pull: [cr.example.invalid/a:1, cr.example.invalid/b:2]
nodes:
  - {hostname: n1, role: agent}
  - {hostname: n2, role: agent}
`)
	py := filepath.Join(src, "py.tar.gz")
	os.WriteFile(py, []byte("python"), 0o644)
	asset := PythonAsset(nodes[0].Python)
	if asset != "cpython-3.12.4+20240713-x86_64-unknown-linux-gnu-install_only.tar.gz" {
		t.Fatalf("asset %s", asset)
	}

	// Nothing there yet: every missing thing is named.
	_, err = ForNodes(nodes, Sources{Cache: cache})
	for _, want := range []string{asset, "cr.example.invalid/a:1", "cr.example.invalid/b:2", "no .debs"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to name %s", err, want)
		}
	}

	if _, err := cache.Import(py, fetch.Artifact{Name: asset, URL: "http://127.0.0.1/py"}); err != nil {
		t.Fatal(err)
	}
	locked := makeDeb(t, src, "bainode-t-locked", "1", "amd64", "", "xz")
	la, err := cache.Import(locked, fetch.Artifact{URL: "http://127.0.0.1/" + filepath.Base(locked), Kind: "deb"})
	if err != nil {
		t.Fatal(err)
	}
	debDir := filepath.Join(src, "debs")
	os.MkdirAll(debDir, 0o755)
	makeDeb(t, debDir, "bainode-t-hand", "1", "amd64", "", "gzip")
	imgDir := filepath.Join(src, "images")
	os.MkdirAll(imgDir, 0o755)
	writeDockerArchive(t, filepath.Join(imgDir, "a.tar"), "cr.example.invalid/a:1", []string{"/x"}, map[string][]byte{"x": []byte("x")}, nil)
	b := filepath.Join(src, "b.tar")
	writeDockerArchive(t, b, "cr.example.invalid/b:2", []string{"/x"}, map[string][]byte{"x": []byte("y")}, nil)
	if _, err := cache.Import(b, fetch.Artifact{Name: ImageArchiveName("cr.example.invalid/b:2"), URL: "http://127.0.0.1/b"}); err != nil {
		t.Fatal(err)
	}

	items, err := ForNodes(nodes, Sources{Cache: cache, Lock: fetch.NewLock([]fetch.Artifact{la}), DebDirs: []string{debDir}, ImageDirs: []string{imgDir}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, string(it.Kind)+":"+it.Name)
	}
	want := []string{
		"python:" + asset,
		"deb:" + filepath.Base(locked),
		"deb:bainode-t-hand_1_amd64.deb",
		"image:a.tar",
		"image:" + ImageArchiveName("cr.example.invalid/b:2"),
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("items:\n got %q\nwant %q", got, want)
	}
	img := filepath.Join(t.TempDir(), "p.img")
	if err := Build(t.Context(), img, cache, items, Options{}); err != nil {
		t.Fatal(err)
	}
	e2fsckClean(t, img)
	m := readManifestBytes(t, debugfsCat(t, img, "/manifest.json"))
	if len(m.Images) != 2 || len(m.Packages) != 2 || len(m.Python) != 1 {
		t.Errorf("manifest: %+v", m)
	}
}
