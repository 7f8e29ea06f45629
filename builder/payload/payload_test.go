package payload

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"pault.ag/go/debian/control"

	"github.com/lablup/bainode/builder/fetch"
)

// ReadDebControl must agree with dpkg-deb -f for every member compression
// dpkg-deb writes.
func TestReadDebControl(t *testing.T) {
	dir := t.TempDir()
	for _, comp := range []string{"gzip", "xz", "zstd", "none"} {
		t.Run(comp, func(t *testing.T) {
			deb := makeDeb(t, dir, "bainode-t-"+comp, "1:2.0~rc1-3", "amd64", "libc6 (>= 2.36), bainode-dep | other", comp)
			c, err := ReadDebControl(deb)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"Package", "Version", "Architecture", "Depends", "Multi-Arch", "Maintainer", "Description"} {
				want := run(t, "dpkg-deb", "-f", deb, f)
				var got strings.Builder
				fetch.WriteParagraph(&got, control.Paragraph{Order: []string{f}, Values: map[string]string{f: c.Get(f)}})
				if got.String() != f+": "+want {
					t.Errorf("%s: got %q, dpkg-deb -f says %q", f, got.String(), want)
				}
			}
		})
	}
}

func TestReadDebControlRejects(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"empty":      "",
		"not-ar":     "PK\x03\x04 a zip file",
		"no-control": "!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n",
		"bad-header": "!<arch>\ndebian-binary   0           0     0     100644  4         xx\n2.0\n",
	} {
		p := filepath.Join(dir, name+".deb")
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadDebControl(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: got %v, want an error naming the file", name, err)
		}
	}
}

// A site with nothing to carry still gets a valid payload: only the manifest.
func TestBuildEmpty(t *testing.T) {
	img := filepath.Join(t.TempDir(), "payload.img")
	var progress bytes.Buffer
	if err := Build(t.Context(), img, nil, nil, Options{Progress: &progress}); err != nil {
		t.Fatal(err)
	}
	e2fsckClean(t, img)
	if got := blkidLabel(t, img); got != "BAIPAYLOAD ext4" {
		t.Errorf("blkid: got %q, want label BAIPAYLOAD, type ext4", got)
	}
	m := readManifestBytes(t, debugfsCat(t, img, "/manifest.json"))
	if len(m.Files) != 0 || len(m.Packages) != 0 || m.Label != Label {
		t.Errorf("manifest: %+v", m)
	}
	ls := run(t, "debugfs", "-R", "ls -p /", img)
	for _, d := range []string{"/apt/", "/images/", "/python/"} {
		if strings.Contains(ls, d) {
			t.Errorf("empty payload has %s:\n%s", d, ls)
		}
	}
	if !strings.HasPrefix(progress.String(), "payload: [1/1] manifest.json (") || strings.Count(progress.String(), "\n") != 1 {
		t.Errorf("progress: %q", progress.String())
	}
	fi, _ := os.Stat(img)
	t.Logf("empty payload: %d bytes", fi.Size())
}

// TestBuild carries .debs (from a path and from the cache), a Python
// tarball and an image, then checks the image with e2fsprogs, the apt
// repository with apt itself (over a loop mount) and dpkg-deb.
func TestBuild(t *testing.T) {
	src := t.TempDir()
	a := makeDeb(t, src, "bainode-t-a", "1.0-1", "amd64", "bainode-t-b (>= 2)", "xz")
	b := makeDeb(t, src, "bainode-t-b", "1:2.5-1", "all", "", "zstd")
	c := makeDeb(t, src, "bainode-t-c", "0.1", "amd64", "", "gzip")
	py := filepath.Join(src, "cpython-3.12.4+20240713-x86_64-unknown-linux-gnu-install_only.tar.gz")
	if err := os.WriteFile(py, bytes.Repeat([]byte("python"), 200_000), 0o644); err != nil {
		t.Fatal(err)
	}
	imgTar := filepath.Join(src, "hello.tar")
	writeDockerArchive(t, imgTar, "bainode-test/hello:1", []string{"/bin/sh"}, map[string][]byte{"bin/sh": []byte("#!/bin/true\n")}, map[string]int64{"bin/sh": 0o755})

	cache, err := fetch.OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	art, err := cache.Import(b, fetch.Artifact{Name: filepath.Base(b), URL: "http://127.0.0.1/b.deb", Kind: "deb"})
	if err != nil {
		t.Fatal(err)
	}

	items := []Item{
		{Kind: KindDeb, Path: a},
		{Kind: KindDeb, Name: art.Name, SHA256: art.SHA256, Size: art.Size}, // from the cache
		{Kind: KindDeb, Path: c},
		{Kind: KindPython, Path: py},
		{Kind: KindImage, Path: imgTar},
	}
	img := filepath.Join(t.TempDir(), "payload.img")
	var progress bytes.Buffer
	if err := Build(t.Context(), img, cache, items, Options{Progress: &progress}); err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s", progress.String())
	if n := strings.Count(progress.String(), "\n"); n != len(items)+4 {
		t.Errorf("progress: %d lines, want one per file (%d)", n, len(items)+4)
	}
	e2fsckClean(t, img)
	if got := blkidLabel(t, img); got != "BAIPAYLOAD ext4" {
		t.Errorf("blkid: got %q", got)
	}
	mb := debugfsCat(t, img, "/manifest.json")
	m := readManifestBytes(t, mb)
	var paths []string
	for _, f := range m.Files {
		paths = append(paths, f.Path)
	}
	want := []string{
		"apt/Packages", "apt/Packages.gz", "apt/Release",
		"apt/" + filepath.Base(a), "apt/" + filepath.Base(b), "apt/" + filepath.Base(c),
		"images/hello.tar",
		"python/" + filepath.Base(py),
	}
	slices.Sort(want)
	if !slices.Equal(paths, want) {
		t.Errorf("manifest files:\n got %q\nwant %q", paths, want)
	}
	if len(m.Images) != 1 || !slices.Equal(m.Images[0].Refs, []string{"bainode-test/hello:1"}) {
		t.Errorf("manifest images: %+v", m.Images)
	}
	// debugfs returns the bytes of a carried file.
	for _, p := range []string{a, py} {
		dst := "/apt/" + filepath.Base(p)
		if strings.HasSuffix(p, ".tar.gz") {
			dst = "/python/" + filepath.Base(p)
		}
		orig, _ := os.ReadFile(p)
		if got := debugfsCat(t, img, dst); !bytes.Equal(got, orig) {
			t.Errorf("%s: debugfs cat gives %d bytes that differ from the %d of %s", dst, len(got), len(orig), p)
		}
	}

	// The Packages index agrees with dpkg-deb about every .deb.
	pk := debugfsCat(t, img, "/apt/Packages")
	idx, err := fetch.ParsePackages(pk)
	if err != nil {
		t.Fatalf("Packages: %v\n%s", err, pk)
	}
	byName := map[string]fetch.AptPackage{}
	for _, p := range idx {
		byName[p.Package] = p
	}
	for _, deb := range []string{a, b, c} {
		name := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Package"))
		p, ok := byName[name]
		if !ok {
			t.Errorf("Packages has no %s", name)
			continue
		}
		if v := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Version")); p.Version != v {
			t.Errorf("%s: Version %q, dpkg-deb says %q", name, p.Version, v)
		}
		if v := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Architecture")); p.Architecture != v {
			t.Errorf("%s: Architecture %q, dpkg-deb says %q", name, p.Architecture, v)
		}
		if v := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Depends")); p.Depends != v {
			t.Errorf("%s: Depends %q, dpkg-deb says %q", name, p.Depends, v)
		}
		fi, _ := os.Stat(deb)
		if p.Filename != "./"+filepath.Base(deb) || p.Size != fi.Size() || p.SHA256 != fileSum(t, deb) {
			t.Errorf("%s: Filename/Size/SHA256 %s %d %s, want ./%s %d %s", name, p.Filename, p.Size, p.SHA256, filepath.Base(deb), fi.Size(), fileSum(t, deb))
		}
	}
	rel, err := fetch.ParseRelease(debugfsCat(t, img, "/apt/Release"))
	if err != nil {
		t.Fatal(err)
	}
	if h := rel.SHA256["Packages"]; h.SHA256 != sha256Hex(pk) || h.Size != int64(len(pk)) {
		t.Errorf("Release: Packages entry %+v does not match the file", h)
	}

	dir := mountRO(t, img)
	if dir == "" {
		if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
			t.Fatal("CI=true: root could not loop-mount the payload")
		}
		t.Log("no loop mount: the apt repository was checked against dpkg-deb only")
		return
	}
	checkTree(t, dir, m)
	aptCheck(t, dir, a, b)
}

// aptCheck points apt at the mounted payload's repository as its only
// source, as the node does, and resolves and downloads from it.
func aptCheck(t *testing.T, mnt, a, b string) {
	needTool(t, "apt-get", "apt")
	work := t.TempDir()
	list := filepath.Join(work, "payload.list")
	if err := os.WriteFile(list, []byte("deb [trusted=yes] file:"+mnt+"/apt ./\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"lists/partial", "cache/archives/partial", "dl"} {
		os.MkdirAll(filepath.Join(work, d), 0o755)
	}
	status := filepath.Join(work, "status")
	os.WriteFile(status, nil, 0o644)
	opts := []string{
		"-o", "Dir::Etc::SourceList=" + list,
		"-o", "Dir::Etc::SourceParts=/dev/null",
		"-o", "Dir::State::Lists=" + filepath.Join(work, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(work, "cache"),
		"-o", "Dir::State::status=" + status,
		"-o", "Debug::NoLocking=1",
		"-o", "APT::Sandbox::User=root",
	}
	aptGet := func(args ...string) string {
		cmd := exec.Command("apt-get", append(opts, args...)...)
		cmd.Dir = filepath.Join(work, "dl")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "W:") || strings.HasPrefix(l, "E:") || strings.HasPrefix(l, "Err:") {
				t.Errorf("apt-get %s: %s", strings.Join(args, " "), l)
			}
		}
		return string(out)
	}
	out := aptGet("update")
	t.Logf("apt-get update:\n%s", out)
	out = aptGet("-s", "install", "bainode-t-a")
	for _, want := range []string{"Inst bainode-t-a (1.0-1 ", "Inst bainode-t-b (1:2.5-1 "} {
		if !strings.Contains(out, want) {
			t.Errorf("apt-get -s install bainode-t-a: no %q in\n%s", want, out)
		}
	}
	aptGet("download", "bainode-t-a", "bainode-t-b")
	for _, deb := range []string{a, b} {
		got := filepath.Join(work, "dl", filepath.Base(deb))
		if fileSum(t, got) != fileSum(t, deb) {
			t.Errorf("apt-get download %s: not the carried bytes", filepath.Base(deb))
		}
	}
}

// A cache blob whose bytes are not its sum fails the build, names the file
// and leaves no image behind.
func TestBuildCorruptCache(t *testing.T) {
	src := t.TempDir()
	deb := makeDeb(t, src, "bainode-t-a", "1.0", "amd64", "", "xz")
	cache, err := fetch.OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	art, err := cache.Import(deb, fetch.Artifact{URL: "http://127.0.0.1/a.deb"})
	if err != nil {
		t.Fatal(err)
	}
	blob := cache.BlobPath(art.SHA256)
	os.Chmod(blob, 0o644)
	b, _ := os.ReadFile(blob)
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(blob, b, 0o444); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	img := filepath.Join(outDir, "payload.img")
	err = Build(t.Context(), img, cache, []Item{{Kind: KindDeb, Name: art.Name, SHA256: art.SHA256, Size: art.Size}}, Options{})
	if err == nil || !strings.Contains(err.Error(), art.Name) || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("got %v, want a corruption error naming %s", err, art.Name)
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}

	// Missing from the cache: named too.
	err = Build(t.Context(), img, cache, []Item{{Kind: KindPython, Name: "cpython.tar.gz", SHA256: strings.Repeat("ab", 32)}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "cpython.tar.gz") || !strings.Contains(err.Error(), "not in the cache") {
		t.Fatalf("got %v, want a missing-artifact error", err)
	}
}

func TestBuildCancelled(t *testing.T) {
	src := t.TempDir()
	deb := makeDeb(t, src, "bainode-t-a", "1.0", "amd64", "", "xz")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dir := t.TempDir()
	err := Build(ctx, filepath.Join(dir, "p.img"), nil, []Item{{Kind: KindDeb, Path: deb}}, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

func TestBuildRejects(t *testing.T) {
	src := t.TempDir()
	deb := makeDeb(t, src, "bainode-t-a", "1.0", "amd64", "", "xz")
	dup := filepath.Join(src, "copy.deb")
	b, _ := os.ReadFile(deb)
	os.WriteFile(dup, b, 0o644)
	notDeb := filepath.Join(src, "x.deb")
	os.WriteFile(notDeb, []byte("hello"), 0o644)
	for name, items := range map[string][]Item{
		"same package twice": {{Kind: KindDeb, Path: deb}, {Kind: KindDeb, Path: dup}},
		"same path twice":    {{Kind: KindPython, Path: deb}, {Kind: KindPython, Path: deb}},
		"not a deb":          {{Kind: KindDeb, Path: notDeb}},
		"bad name":           {{Kind: KindPython, Path: deb, Name: "../x"}},
		"reserved name":      {{Kind: KindDeb, Path: deb, Name: "Packages"}},
		"unknown kind":       {{Kind: "iso", Path: deb}},
		"nowhere":            {{Kind: KindDeb, Name: "a.deb"}},
		"wrong size":         {{Kind: KindDeb, Path: deb, Size: 3}},
	} {
		if err := Build(t.Context(), filepath.Join(t.TempDir(), "p.img"), nil, items, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestImageRefs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.tar")
	writeDockerArchive(t, p, "cr.example.invalid/a/b:1.2", []string{"/x"}, map[string][]byte{"x": []byte("x")}, nil)
	refs, err := ImageRefs(p)
	if err != nil || !slices.Equal(refs, []string{"cr.example.invalid/a/b:1.2"}) {
		t.Fatalf("got %q, %v", refs, err)
	}
	for _, c := range []struct {
		tag, ref string
		same     bool
	}{
		{"docker.io/library/ubuntu:20.04", "ubuntu:20.04", true},
		{"ubuntu:latest", "ubuntu", true},
		{"localhost:5000/x", "localhost:5000/x:latest", true},
		{"cr.backend.ai/stable/python:3.9", "cr.backend.ai/stable/python:3.8", false},
	} {
		if got := sameImage(c.tag, c.ref); got != c.same {
			t.Errorf("sameImage(%q, %q) = %v", c.tag, c.ref, got)
		}
	}
	if got := ImageArchiveName("cr.backend.ai/stable/python:3.9-ubuntu20.04"); got != "image_cr.backend.ai_stable_python_3.9-ubuntu20.04.tar" {
		t.Errorf("ImageArchiveName: %s", got)
	}
}
