//go:build linux

package deploy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// BenchmarkDeployWrite measures how fast an image reaches the disk, in MB/s
// of the uncompressed image, from the same loopback HTTP server (serving
// the raw.zst from a file, as bainoded does):
//
//   - agent: the deploy agent's whole path (Run: wipe, download, sha256,
//     decompress, write with holes for zeros, table edit, seed, fsync)
//     onto a file-backed disk;
//   - curl-zstd-dd-sparse: what a user would type instead,
//     curl | zstd -dc | dd bs=4M iflag=fullblock conv=sparse,fsync;
//   - curl-zstd-dd: the same without conv=sparse (every zero written).
//
// Both write a new file in the same directory and sync it; the raw.zst is
// in the page cache for both. cpu-s/op is user+system time of the whole
// test process and its children (the server included, for both).
//
// The image is a synthetic disk (synthImage), or BAINODE_BENCH_IMAGE=x.raw.zst.
// scripts/bench.sh (ONLY=deploy) runs this a few times and takes medians.
func BenchmarkDeployWrite(b *testing.B) {
	img := benchImage(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(img.path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "", time.Time{}, f)
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	url := "http://" + ln.Addr().String() + "/image.raw.zst"
	dir := b.TempDir()
	b.Logf("image %s: %d MiB raw, %d MiB zst; load %s", filepath.Base(img.path), img.raw>>20, img.size>>20, loadAvg())

	b.Run("agent", func(b *testing.B) {
		diskSize := img.raw + 32<<20 // the seed partition and alignment
		n := newFakeNode(b, map[string]int64{"vda": diskSize})
		disk := filepath.Join(n.dev, "vda")
		cfg := Config{Node: "bench", Image: Image{URL: url, SHA256: img.sha, Size: img.size},
			SeedFiles: map[string][]byte{"meta-data": []byte("instance-id: bench\n"), "user-data": []byte("#cloud-config\n{}\n")}}
		sys := System{SysBlock: n.sys, Dev: n.dev, Reboot: func() error { return nil }}
		benchLoop(b, img.raw, func() { os.Remove(disk); oldDisk(b, disk, diskSize) }, func() error {
			return Run(b.Context(), cfg, sys)
		})
		os.Remove(disk)
	})
	for _, side := range []struct{ name, conv string }{{"curl-zstd-dd-sparse", "sparse,fsync"}, {"curl-zstd-dd", "fsync"}} {
		b.Run(side.name, func(b *testing.B) {
			for _, tool := range []string{"curl", "zstd", "dd", "bash"} {
				if _, err := exec.LookPath(tool); err != nil {
					b.Fatalf("%s not found", tool)
				}
			}
			out := filepath.Join(dir, "dd.img")
			benchLoop(b, img.raw, func() { os.Remove(out) }, func() error {
				cmd := exec.Command("bash", "-c", `set -o pipefail; curl -fsS "$1" | zstd -dcq | dd of="$2" bs=4M iflag=fullblock conv=`+side.conv+` status=none`,
					"bash", url, out)
				if msg, err := cmd.CombinedOutput(); err != nil {
					return fmt.Errorf("%v: %s", err, msg)
				}
				if st, err := os.Stat(out); err != nil || st.Size() != img.raw {
					return fmt.Errorf("dd wrote %v bytes (%v), want %d", st.Size(), err, img.raw)
				}
				return nil
			})
			os.Remove(out)
		})
	}
}

// benchLoop times run b.N times, each after an untimed reset and sync.
func benchLoop(b *testing.B, raw int64, reset func(), run func() error) {
	b.SetBytes(raw)
	b.StopTimer()
	var cpu time.Duration
	for range b.N {
		reset()
		unix.Sync() // the last run's writeback is not this run's cost
		c0 := cpuTime()
		b.StartTimer()
		err := run()
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

func cpuTime() time.Duration {
	var t time.Duration
	for _, who := range []int{unix.RUSAGE_SELF, unix.RUSAGE_CHILDREN} {
		var ru unix.Rusage
		unix.Getrusage(who, &ru)
		t += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return t
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if len(b) < 14 {
		return "?"
	}
	return string(b[:14])
}

type benchImg struct {
	path      string
	sha       string
	size, raw int64 // compressed, uncompressed
}

// benchImage returns BAINODE_BENCH_IMAGE, or the synthetic image (made
// once, kept in the user cache dir), read once so the page cache holds it.
func benchImage(b *testing.B) benchImg {
	path, raw := os.Getenv("BAINODE_BENCH_IMAGE"), int64(-1)
	if path == "" {
		path, raw = synthImageFile(b), synthSize
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if raw < 0 { // the uncompressed size is only known by decompressing
		dec, err := zstd.NewReader(io.TeeReader(f, h), zstd.WithDecoderLowmem(false))
		if err != nil {
			b.Fatal(err)
		}
		defer dec.Close()
		if raw, err = io.Copy(io.Discard, dec); err != nil {
			b.Fatalf("%s: %v", path, err)
		}
	}
	if _, err := io.Copy(h, f); err != nil {
		b.Fatal(err)
	}
	size, _ := f.Seek(0, io.SeekCurrent)
	return benchImg{path: path, sha: hex.EncodeToString(h.Sum(nil)), size: size, raw: raw}
}

// synthRecipe names synthImage's output; change it with synthImage.
const (
	synthRecipe = "synth-v1-640M"
	synthSize   = 640 << 20
)

func synthImageFile(b *testing.B) string {
	cache, err := os.UserCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(cache, "bainode", "bench-deploy")
	path := filepath.Join(dir, synthRecipe+".raw.zst")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	tmp, err := os.CreateTemp(dir, ".synth-*")
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(tmp.Name())
	// As bake compresses (builder/bake zstdFile): default level, all cores.
	zw, err := zstd.NewWriter(tmp, zstd.WithEncoderConcurrency(runtime.NumCPU()), zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		b.Fatal(err)
	}
	if err := synthImage(zw, synthSize); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		b.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		b.Fatal(err)
	}
	return path
}

// synthImage writes a deterministic disk image of size bytes shaped like
// an OS disk: an MBR with one Linux partition from 1 MiB, then extents of
// 64 KiB to 8 MiB, 4 KiB aligned: 15% random bytes (compressed files,
// firmware), 40% text-like (binaries, configs: about 3x with zstd), 45%
// zeros (free space).
func synthImage(w io.Writer, size int64) error {
	src := rand.NewChaCha8([32]byte{'d', 'e', 'p', 'l', 'o', 'y'})
	rng := rand.New(src)
	head := make([]byte, headSize)
	head[0] = 0xeb
	head[446+4] = 0x83
	binary.LittleEndian.PutUint32(head[446+8:], headSize/sector)
	binary.LittleEndian.PutUint32(head[446+12:], uint32((size-headSize)/sector))
	head[510], head[511] = 0x55, 0xaa
	if _, err := w.Write(head); err != nil {
		return err
	}
	words := make([][]byte, 4096)
	for i := range words {
		wd := make([]byte, 2+rng.IntN(9))
		for j := range wd {
			wd[j] = 'a' + byte(rng.IntN(26))
		}
		words[i] = append(wd, " \n\x00/"[rng.IntN(4)])
	}
	buf := make([]byte, 8<<20)
	for off := int64(headSize); off < size; {
		n := min(int64(64<<10)<<rng.IntN(8), size-off)
		p := buf[:n]
		switch k := rng.IntN(100); {
		case k < 15:
			src.Read(p)
		case k < 55:
			for i := 0; i < len(p); {
				v := rng.Uint64()
				for s := 0; s < 64-12 && i < len(p); s += 12 {
					i += copy(p[i:], words[v>>s&4095])
				}
			}
		default:
			clear(p)
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
		off += n
	}
	return nil
}
