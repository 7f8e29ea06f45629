//go:build unix

package seed_test

// Benchmarks for writing one typical node's seed: the GPU agent bai-a01 of
// the built-in cluster example, rendered once outside the timed loop.
//
//	go test -run '^$' -bench . -benchmem ./builder/seed
//	go test -run '^$' -bench WriteISO -cpuprofile cpu.out ./builder/seed
//
// Besides ns/op (wall clock) each benchmark reports cpu-ns/op, the process's
// user+system CPU time per seed, which stays meaningful when other work
// shares the machine.
//
// scripts/bench.sh times the whole CLI on a 1,000-node site and compares it
// with cloud-localds; docs/benchmarks.md has the figures.

import (
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/seed"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/templates"
)

// typicalNode renders the cluster example's bai-a01.
func typicalNode(tb testing.TB) (*render.Renderer, *spec.Site, *spec.Node, render.Files) {
	tb.Helper()
	const name = "examples/cluster.yaml"
	b, err := fs.ReadFile(templates.FS, name)
	if err != nil {
		tb.Fatal(err)
	}
	site, err := spec.Parse(name, b)
	if err != nil {
		tb.Fatal(err)
	}
	var node *spec.Node
	for i := range site.Nodes {
		if site.Nodes[i].Hostname == "bai-a01" {
			node = &site.Nodes[i]
		}
	}
	if node == nil {
		tb.Fatalf("%s has no node bai-a01", name)
	}
	r, err := render.New(render.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	files, err := r.Node(site, node)
	if err != nil {
		tb.Fatal(err)
	}
	return r, site, node, files
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs op b.N times and reports its CPU time and rate; unit names what
// one op makes ("seeds/s").
func loop(b *testing.B, unit string, op func() error) {
	b.ReportAllocs()
	start := cpuTime(b)
	for b.Loop() {
		if err := op(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

func benchWrite(b *testing.B, write func(string, fs.FS) error, ext string) {
	_, _, _, files := typicalNode(b)
	fsys := files.FS()
	var in int64
	for _, d := range files.Map() {
		in += int64(len(d))
	}
	path := filepath.Join(b.TempDir(), "seed"+ext)
	b.SetBytes(in)
	loop(b, "seeds/s", func() error { return write(path, fsys) })
}

func BenchmarkWriteISO(b *testing.B) { benchWrite(b, seed.WriteISO, ".iso") }

func BenchmarkWriteFAT(b *testing.B) { benchWrite(b, seed.WriteFAT, ".img") }

// BenchmarkRenderNode is the other half of `bainode seed`'s work per node,
// for comparison with the seed writers above.
func BenchmarkRenderNode(b *testing.B) {
	r, site, node, _ := typicalNode(b)
	loop(b, "nodes/s", func() error { _, err := r.Node(site, node); return err })
}
