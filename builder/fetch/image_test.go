package fetch

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/lablup/bainode/builder/internal/testsrv"
)

// hermeticDocker points the default keychain at an empty docker config.
func hermeticDocker(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("REGISTRY_AUTH_FILE", filepath.Join(t.TempDir(), "none.json"))
}

func sameImage(t *testing.T, got, want v1.Image) {
	t.Helper()
	for _, f := range []struct {
		what string
		dg   func(v1.Image) (v1.Hash, error)
	}{
		{"manifest", v1.Image.Digest},
		{"config", v1.Image.ConfigName},
	} {
		g, err := f.dg(got)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := f.dg(want)
		if g != w {
			t.Errorf("%s digest %s, want %s", f.what, g, w)
		}
	}
	gl, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	wl, _ := want.Layers()
	if len(gl) != len(wl) {
		t.Fatalf("%d layers, want %d", len(gl), len(wl))
	}
	for i := range gl {
		g, _ := gl[i].Digest()
		w, _ := wl[i].Digest()
		gd, _ := gl[i].DiffID()
		wd, _ := wl[i].DiffID()
		if g != w || gd != wd {
			t.Errorf("layer %d: %s/%s, want %s/%s", i, g, gd, w, wd)
		}
	}
}

func TestPullImage(t *testing.T) {
	hermeticDocker(t)
	reg := testsrv.NewRegistry(t, "bai", "s3cret")
	want := reg.Push(t, "stable/python:3.9-ubuntu20.04", 3)
	ref := reg.Host() + "/stable/python:3.9-ubuntu20.04"
	c := openTestCache(t)
	kc := Keychain(RegistryCredential{Registry: reg.Host(), Username: "bai", Password: "s3cret"})
	var progress syncBuffer
	o := ImageOptions{Name: "image_test.tar", Options: Options{Progress: &progress}}

	a, err := PullImage(context.Background(), c, ref, "", kc, o)
	if err != nil {
		t.Fatal(err)
	}
	wantDigest, _ := want.Digest()
	if a.Kind != "image" || a.Version != wantDigest.String() || a.URL != "docker://"+ref || a.Name != "image_test.tar" || !isHexSum(a.SHA256) {
		t.Errorf("artifact %+v", a)
	}
	p, ok := c.Path("image_test.tar")
	if !ok {
		t.Fatal("the cache does not hold image_test.tar")
	}
	if got, _ := fileSHA256(p); got != a.SHA256 {
		t.Errorf("blob sha256 %s, artifact says %s", got, a.SHA256)
	}
	if fi, _ := os.Stat(p); fi.Size() != a.Size {
		t.Errorf("blob is %d bytes, artifact says %d", fi.Size(), a.Size)
	}
	tag, _ := name.NewTag(ref)
	got, err := tarball.ImageFromPath(p, &tag)
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, got, want)
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(p) })
	if err != nil || len(m) != 1 || len(m[0].RepoTags) != 1 || m[0].RepoTags[0] != ref {
		t.Errorf("manifest.json %+v (%v): want RepoTags [%s]", m, err, ref)
	}
	mustContain(t, progress.String(), "pulling "+ref, "pulled "+ref)
	if left := dirEntries(t, filepath.Join(c.Root(), "partial")); len(left) != 0 {
		t.Errorf("partial/ keeps %v", left)
	}

	// Warm: one manifest request, no blob.
	blobs0, man0 := reg.Counts()
	b, err := PullImage(context.Background(), c, ref, "linux/amd64", kc, o)
	if err != nil {
		t.Fatal(err)
	}
	blobs1, man1 := reg.Counts()
	if b != a || blobs1 != blobs0 {
		t.Errorf("warm pull: %+v (want %+v), %d blob GETs", b, a, blobs1-blobs0)
	}
	if man1-man0 > 2 {
		t.Errorf("warm pull made %d manifest requests", man1-man0)
	}

	// Pinned by the lock: no request at all, even with the registry gone.
	o.SHA256, o.Digest = a.SHA256, a.Version
	reg.Close()
	if b, err := PullImage(context.Background(), c, ref, "", kc, o); err != nil || b != a {
		t.Errorf("pinned warm pull: %+v, %v", b, err)
	}
}

func TestPullImageByLockedDigest(t *testing.T) {
	hermeticDocker(t)
	reg := testsrv.NewRegistry(t, "", "")
	old := reg.Push(t, "x/app:1", 1)
	ref := reg.Host() + "/x/app:1"
	c := openTestCache(t)
	a, err := PullImage(context.Background(), c, ref, "", nil, ImageOptions{Name: "app.tar"})
	if err != nil {
		t.Fatal(err)
	}
	reg.Push(t, "x/app:1", 2) // the tag moves on

	// A second cache from the lock entry gets the locked image, byte for byte.
	c2 := openTestCache(t)
	b, err := PullImage(context.Background(), c2, ref, "", nil, ImageOptions{Name: "app.tar", Digest: a.Version, SHA256: a.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	if b != a {
		t.Errorf("from the lock: %+v, want %+v", b, a)
	}
	p, _ := c2.Path("app.tar")
	tag, _ := name.NewTag(ref)
	got, err := tarball.ImageFromPath(p, &tag)
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, got, old)

	// Without the pin, the new image replaces the old under the same name.
	n, err := PullImage(context.Background(), c, ref, "", nil, ImageOptions{Name: "app.tar"})
	if err != nil || n.Version == a.Version || n.SHA256 == a.SHA256 {
		t.Errorf("moved tag: %+v, %v", n, err)
	}
}

func TestPullImageCredentials(t *testing.T) {
	hermeticDocker(t)
	reg := testsrv.NewRegistry(t, "bai", "s3cret")
	reg.Push(t, "private/img:1", 1)
	ref := reg.Host() + "/private/img:1"
	c := openTestCache(t)
	for _, tc := range []struct {
		what string
		kc   authn.Keychain
	}{
		{"wrong token", Keychain(RegistryCredential{Registry: reg.Host(), Username: "bai", Password: "wrong"})},
		{"anonymous", Keychain()},
		{"other registry's credentials", Keychain(RegistryCredential{Registry: "cr.example.invalid", Username: "bai", Password: "s3cret"})},
	} {
		_, err := PullImage(context.Background(), c, ref, "", tc.kc, ImageOptions{Name: "img.tar"})
		if err == nil {
			t.Fatalf("%s: pulled", tc.what)
		}
		mustContain(t, err.Error(), ref, "refused the credentials", "images.registries")
		if _, ok := c.Lookup("img.tar"); ok {
			t.Errorf("%s: the cache indexes img.tar", tc.what)
		}
	}
	if left := dirEntries(t, filepath.Join(c.Root(), "partial")); len(left) != 0 {
		t.Errorf("partial/ keeps %v", left)
	}

	// The user's docker config is the fallback.
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	cfg := fmt.Sprintf(`{"auths":{%q:{"username":"bai","password":"s3cret"}}}`, reg.Host())
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := PullImage(context.Background(), c, ref, "", Keychain(), ImageOptions{Name: "img.tar"}); err != nil {
		t.Errorf("with docker config credentials: %v", err)
	}
}

func TestPullImageMirror(t *testing.T) {
	hermeticDocker(t)
	reg := testsrv.NewRegistry(t, "", "")
	want := reg.Push(t, "mirror/stable/python:3.9", 1)
	c := openTestCache(t)
	ref := "cr.example.invalid/stable/python:3.9"
	o := ImageOptions{Name: "py.tar", Options: Options{Mirrors: map[string]string{"https://cr.example.invalid": reg.URL + "/mirror"}}}
	a, err := PullImage(context.Background(), c, ref, "", nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if a.URL != "docker://"+ref {
		t.Errorf("URL %s", a.URL)
	}
	p, _ := c.Path("py.tar")
	tag, _ := name.NewTag(ref)
	got, err := tarball.ImageFromPath(p, &tag) // tagged with the origin reference
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, got, want)

	if _, err := PullImage(context.Background(), c, ref, "", nil, ImageOptions{}); err == nil {
		t.Error("no cache name: no error")
	}
}
