package payload

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/internal/testsrv"
)

// benchTree makes a payload-shaped tree: 40 small and 24 larger .debs, a
// 30 MiB Python tarball and two 40 MiB image tarballs (incompressible
// bytes). It returns the items and the same files laid out as apt/,
// python/ and images/ under tree (hard links) for mkfs.ext4 -d.
func benchTree(b *testing.B) (items []Item, tree string, bytes int64) {
	src := b.TempDir()
	tree = filepath.Join(src, "tree")
	for _, d := range []string{"apt", "python", "images"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	add := func(kind Kind, p string) {
		fi, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		items = append(items, Item{Kind: kind, Path: p})
		if err := os.Link(p, filepath.Join(tree, kindDir[kind], filepath.Base(p))); err != nil {
			b.Fatal(err)
		}
		bytes += fi.Size()
	}
	debs := filepath.Join(src, "debs")
	os.MkdirAll(debs, 0o755)
	for i := range 64 {
		extra := 0
		if i%8 < 3 {
			extra = (1 + i%5) << 20
		}
		add(KindDeb, makeDebSized(b, debs, fmt.Sprintf("bench-%02d", i), "1.0", "amd64", "", "none", extra))
	}
	for i, f := range []struct {
		kind Kind
		name string
		size int
	}{{KindPython, "cpython-3.12.4+20240713-x86_64-unknown-linux-gnu-install_only.tar.gz", 30 << 20}, {KindImage, "a.tar", 40 << 20}, {KindImage, "b.tar", 40 << 20}} {
		p := filepath.Join(src, f.name)
		if err := os.WriteFile(p, testsrv.RandomBytes(uint64(i), f.size), 0o644); err != nil {
			b.Fatal(err)
		}
		items = append(items, Item{Kind: f.kind, Path: p, Refs: []string{"x:1"}})
		if err := os.Link(p, filepath.Join(tree, kindDir[f.kind], f.name)); err != nil {
			b.Fatal(err)
		}
		bytes += int64(f.size)
	}
	return items, tree, bytes
}

// BenchmarkBuildVsMkfs builds the same tree into an image of the same size
// with Build (go-diskfs; it also parses each .deb's control file, hashes
// every file and writes the apt indexes and manifest) and with
// mkfs.ext4 -d, each iteration running both, and reports both throughputs
// and the ratio of their times. No assertions: the numbers are for reading.
func BenchmarkBuildVsMkfs(b *testing.B) {
	needTool(b, "mkfs.ext4", "e2fsprogs")
	items, tree, total := benchTree(b)
	out := b.TempDir()
	var build, mkfs time.Duration
	checked := false
	b.ResetTimer()
	for range b.N {
		img := filepath.Join(out, "payload.img")
		t0 := time.Now()
		if err := Build(b.Context(), img, nil, items, Options{}); err != nil {
			b.Fatal(err)
		}
		build += time.Since(t0)
		fi, err := os.Stat(img)
		if err != nil {
			b.Fatal(err)
		}
		if !checked {
			b.StopTimer()
			e2fsckClean(b, img)
			checked = true
			b.StartTimer()
		}
		os.Remove(img)

		ref := filepath.Join(out, "mkfs.img")
		t1 := time.Now()
		cmd := exec.Command("mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0", "-N", fmt.Sprint(inodeCount(&plan{files: make([]*entry, len(items))})), "-O", "^has_journal,^resize_inode", "-L", Label,
			"-d", tree, ref, fmt.Sprintf("%dk", fi.Size()/1024))
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("mkfs.ext4: %v\n%s", err, o)
		}
		mkfs += time.Since(t1)
		os.Remove(ref)
	}
	b.StopTimer()
	mb := float64(total) * float64(b.N) / 1e6
	b.ReportMetric(mb/build.Seconds(), "payload-MB/s")
	b.ReportMetric(mb/mkfs.Seconds(), "mkfs-MB/s")
	b.ReportMetric(build.Seconds()/mkfs.Seconds(), "payload/mkfs-time")
	b.ReportMetric(float64(total)/1e6, "tree-MB")
}
