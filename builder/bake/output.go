package bake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/klauspost/compress/zstd"

	"github.com/lablup/bainode/builder/atomicfile"
)

// Format is an output format.
type Format string

const (
	FormatQCOW2  Format = "qcow2"   // compressed qcow2: zstd, or zlib with Compat
	FormatRaw    Format = "raw"     // sparse raw, for cloud imports
	FormatRawZst Format = "raw.zst" // zstd stream of the raw disk, for bare metal
)

// Formats lists the output formats, for flags and errors.
var Formats = []Format{FormatQCOW2, FormatRaw, FormatRawZst}

func (f Format) check() error {
	for _, g := range Formats {
		if f == g {
			return nil
		}
	}
	return fmt.Errorf("format: %q is not one of %v", f, Formats)
}

func stepConvert(ctx context.Context, s *State) error {
	out := s.Opts.Output
	tmp := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".tmp-"+s.Marker[:8])
	s.OnFail("partial output", func() error {
		if err := os.Remove(tmp); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	})
	threads := max(2, runtime.NumCPU())
	s.Manifest.Compression = Compression{Threads: threads}
	switch s.Opts.Format {
	case FormatQCOW2:
		s.Manifest.Compression.Type = qcow2Compression(s.Opts.Compat)
		if err := convertQCOW2(ctx, s.Disk, tmp, s.Opts.Compat, threads); err != nil {
			return err
		}
	case FormatRaw:
		s.Manifest.Compression.Type = "none (sparse)"
		if err := qemuImg(ctx, "convert", "-W", "-m", fmt.Sprint(threads), "-S", "4k", "-O", "raw", s.Disk, tmp); err != nil {
			return err
		}
	case FormatRawZst:
		s.Manifest.Compression.Type = "zstd stream"
		raw := filepath.Join(s.WorkDir, "disk.raw")
		if err := qemuImg(ctx, "convert", "-W", "-m", fmt.Sprint(threads), "-S", "4k", "-O", "raw", s.Disk, raw); err != nil {
			return err
		}
		if err := zstdFile(ctx, raw, tmp); err != nil {
			return err
		}
		os.Remove(raw)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	sum, size, err := sha256File(tmp)
	if err != nil {
		return err
	}
	s.Manifest.Output = FileSum{Path: filepath.Base(out), SHA256: sum, Size: size}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	// From here the output is in place: a later failure removes it, since
	// an output without its manifest would not be trusted anyway.
	s.OnFail("output", func() error { return os.Remove(out) })
	return nil
}

// qcow2Compression is the cluster compression of a qcow2 output. zstd
// compresses faster and smaller, but QEMU reads it only from 5.1 on
// (Ubuntu 20.04 ships 4.2): compat picks zlib, which every QEMU reads.
func qcow2Compression(compat bool) string {
	if compat {
		return "zlib"
	}
	return "zstd"
}

// convertQCOW2 writes a compressed qcow2 of src. -W (out-of-order writes)
// and -m (coroutines) let qemu-img compress clusters on several threads.
func convertQCOW2(ctx context.Context, src, dst string, compat bool, threads int) error {
	opts := "compression_type=" + qcow2Compression(compat)
	if compat {
		opts += ",compat=0.10" // the original qcow2 version: older readers too
	}
	return qemuImg(ctx, "convert", "-c", "-W", "-m", fmt.Sprint(threads), "-O", "qcow2", "-o", opts, src, dst)
}

// zstdFile compresses src into dst on all cores. Holes read as zeros and
// compress to almost nothing.
func zstdFile(ctx context.Context, src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	zw, err := zstd.NewWriter(f, zstd.WithEncoderConcurrency(runtime.NumCPU()), zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, ctxReader{ctx, in}); err != nil {
		zw.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func sha256File(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Manifest is written beside the output as OUTPUT.json.
type Manifest struct {
	Version int    `json:"version"`
	Key     string `json:"key"` // hash of all inputs: the cache key
	Inputs  Inputs `json:"inputs"`
	Format  Format `json:"format"`
	// Compression says how the output is compressed and on how many threads.
	Compression Compression `json:"compression"`
	Created     string      `json:"created"`
	Output      FileSum     `json:"output"`
	Kernels     []string    `json:"kernels"`
	Packages    [][]string  `json:"packages"` // name, version, arch (the guest's dpkg list)
	Seal        SealReport  `json:"seal"`
	Steps       []StepTime  `json:"steps"`

	// DriverVermagic is the NVIDIA module's vermagic per installed kernel
	// (GPU roles), as bainode-gpu-gate read it at seal time.
	DriverVermagic map[string]string `json:"driver_vermagic,omitempty"`
}

// Compression is the output's compression: "zstd" or "zlib" clusters
// (qcow2), "zstd stream" (raw.zst) or none (raw).
type Compression struct {
	Type    string `json:"type"`
	Threads int    `json:"threads"`
}

// StepTime is how long one step took.
type StepTime struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// FileSum names a file by its hash.
type FileSum struct {
	Path   string `json:"path,omitempty"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// ManifestPath is where the manifest of output goes.
func ManifestPath(output string) string { return output + ".json" }

func stepManifest(_ context.Context, s *State) error {
	b, err := json.MarshalIndent(s.Manifest, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(ManifestPath(s.Opts.Output), append(b, '\n'), 0o644)
}

// ReadManifest reads OUTPUT.json.
func ReadManifest(path string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}
