package fetch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/lablup/bainode/builder/internal/testsrv"
)

// benchSize is the size of each of the 8 benchmark artifacts: 8 MiB, or
// BAINODE_BENCH_SIZE bytes (suffixes K, M, G: BAINODE_BENCH_SIZE=200M).
func benchSize(b *testing.B) int64 {
	s := os.Getenv("BAINODE_BENCH_SIZE")
	if s == "" {
		return 8 << 20
	}
	mult := int64(1)
	switch s[len(s)-1] {
	case 'K', 'k':
		mult, s = 1<<10, s[:len(s)-1]
	case 'M', 'm':
		mult, s = 1<<20, s[:len(s)-1]
	case 'G', 'g':
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		b.Fatalf("BAINODE_BENCH_SIZE=%q: want a size like 200M", os.Getenv("BAINODE_BENCH_SIZE"))
	}
	return n * mult
}

// benchArtifacts writes 8 files to disk (not memory: 8x200 MB would not fit
// comfortably) and serves them from a loopback server.
func benchArtifacts(b *testing.B) ([]Artifact, int64) {
	size := benchSize(b)
	dir := b.TempDir()
	chunk := testsrv.RandomBytes(42, 1<<20)
	var arts []Artifact
	for i := 0; i < 8; i++ {
		name := fmt.Sprintf("bench-%d.bin", i)
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		chunk[0] = byte(i) // distinct files, distinct sums
		for left := size; left > 0; left -= int64(len(chunk)) {
			f.Write(chunk[:min(left, int64(len(chunk)))])
		}
		f.Close()
		sum, _ := fileSHA256(f.Name())
		arts = append(arts, Artifact{Name: name, SHA256: sum, Size: size})
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	b.Cleanup(srv.Close)
	for i := range arts {
		arts[i].URL = srv.URL + "/" + arts[i].Name
	}
	return arts, 8 * size
}

// BenchmarkDownload: 8 artifacts, Jobs=4, from 127.0.0.1, into a fresh
// cache each iteration (download + sha256 + rename). MB/s is of the payload.
func BenchmarkDownload(b *testing.B) {
	arts, total := benchArtifacts(b)
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c, err := OpenCache(filepath.Join(b.TempDir(), "cache"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := Download(context.Background(), c, arts, Options{Jobs: 4})
		if err != nil || res.Downloaded != total {
			b.Fatalf("%+v, %v", res, err)
		}
		b.StopTimer()
		os.RemoveAll(c.Root())
		b.StartTimer()
	}
}

// BenchmarkDownloadWarm: the same artifacts already cached; no bytes move
// and nothing is hashed, so MB/s here is "payload made available per second".
func BenchmarkDownloadWarm(b *testing.B) {
	arts, total := benchArtifacts(b)
	c, err := OpenCache(filepath.Join(b.TempDir(), "cache"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Download(context.Background(), c, arts, Options{Jobs: 4}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := Download(context.Background(), c, arts, Options{Jobs: 4})
		if err != nil || res.Downloaded != 0 || res.Cached != 8 {
			b.Fatalf("%+v, %v", res, err)
		}
	}
}
