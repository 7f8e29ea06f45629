package bake

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/fetch"
	"github.com/lablup/bainode/builder/plan"
	"github.com/lablup/bainode/builder/spec"
)

// CloudImage finds each Ubuntu target's cloud image under the name
// `bainode fetch --cloud-image` stores it, says what to run when it is
// missing, and refuses other targets and a blob that changed size. The
// bake then compares the base's hash with the cache's record.
func TestCloudImageBase(t *testing.T) {
	dir := t.TempDir()
	cache, err := fetch.OpenCache(filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	site, err := spec.Parse("s.yaml", []byte("version: 1\ntarget: ubuntu-22.04\nnodes: [{hostname: bai-a01, role: agent}, {hostname: bai-d01, role: agent, target: debian-12}, {hostname: bai-n01, role: agent, target: ubuntu-24.04}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	jammy, deb, noble := &site.Nodes[0], &site.Nodes[1], &site.Nodes[2]
	const fetchCmd = "bainode fetch -c s.yaml --node bai-a01 --cloud-image"

	// Missing: the error names the image and the command.
	_, err = CloudImage(cache, jammy, "amd64", fetchCmd)
	var miss *MissingBaseError
	if !errors.As(err, &miss) || miss.Name != "jammy-server-cloudimg-amd64.img" ||
		!strings.Contains(err.Error(), fetchCmd) || !strings.Contains(err.Error(), "--base") {
		t.Fatalf("missing image: %v", err)
	}

	// Fetched: found by its name, its blob and recorded sha256 returned.
	img := filepath.Join(dir, "jammy.img")
	if err := os.WriteFile(img, []byte("a cloud image stand-in\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := cache.Import(img, fetch.Artifact{Name: miss.Name, URL: plan.UbuntuCloudImages + "/jammy/current/" + miss.Name, Kind: plan.KindCloudImage})
	if err != nil {
		t.Fatal(err)
	}
	b, err := CloudImage(cache, jammy, "amd64", fetchCmd)
	if err != nil {
		t.Fatal(err)
	}
	if b.Path != cache.BlobPath(a.SHA256) || b.SHA256 != a.SHA256 || b.Name != miss.Name {
		t.Errorf("found %+v, want the blob of %+v", b, a)
	}
	got, _ := os.ReadFile(b.Path)
	if string(got) != "a cloud image stand-in\n" {
		t.Errorf("blob holds %q", got)
	}
	// Another target has another image, not fetched yet.
	if _, err := CloudImage(cache, noble, "amd64", fetchCmd); !errors.As(err, &miss) || miss.Name != "noble-server-cloudimg-amd64.img" {
		t.Errorf("noble: %v", err)
	}
	// Debian has no vendor image in the plan: --base it is.
	if _, err := CloudImage(cache, deb, "amd64", fetchCmd); err == nil || !strings.Contains(err.Error(), "target debian-12") || !strings.Contains(err.Error(), "--base") {
		t.Errorf("debian-12: %v", err)
	}
	// An artifact of another kind under that name is not taken for it.
	if _, err := cache.Import(img, fetch.Artifact{Name: "noble-server-cloudimg-amd64.img", URL: "file:///x", Kind: "python"}); err != nil {
		t.Fatal(err)
	}
	if _, err := CloudImage(cache, noble, "amd64", fetchCmd); err == nil || !strings.Contains(err.Error(), "not a cloud image") {
		t.Errorf("a python artifact as noble's image: %v", err)
	}

	// The bake hashes the base and compares it with the record.
	o := Options{Base: b.Path, BaseSHA256: b.SHA256, Seed: renderSeed(t, site, jammy), Format: FormatQCOW2}
	if _, _, err := o.inputs(); err != nil {
		t.Errorf("inputs with the recorded sha256: %v", err)
	}
	o.BaseSHA256 = strings.Repeat("0", 64)
	if _, _, err := o.inputs(); err == nil || !strings.Contains(err.Error(), "not the "+o.BaseSHA256+" the fetch cache recorded") {
		t.Errorf("inputs with another sha256: %v", err)
	}
	// A blob that changed size since the fetch is refused.
	if err := os.WriteFile(b.Path, []byte("truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CloudImage(cache, jammy, "amd64", fetchCmd); err == nil || !strings.Contains(err.Error(), "bainode fetch --check") {
		t.Errorf("a blob of another size: %v", err)
	}
}
