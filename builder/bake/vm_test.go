package bake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/builder/vm"
	"github.com/lablup/bainode/templates"
	"github.com/lablup/bainode/testing/payloadfix"
	"github.com/lablup/bainode/testing/qemu"
)

// testHash is the operator's password hash in the bake (of "bakepw"): it
// belongs in /etc/shadow and nowhere else on the sealed image.
const testHash = "$6$bakesalt0123$Nv74As/7a2Fn8zfgJCArzfURVQ4/mH/urr0OgvZMQigAjdOBtEfeYamRwckbEq6SbSd.yHppCT0ICbpnHvLpL/"

// testSite is the vm-test example with a password hash and a sysctl
// override the clones can check; sysctlValue varies it for the cache test.
func testSite(t testing.TB, sysctlValue string) (*spec.Site, *spec.Node) {
	t.Helper()
	return parseSite(t, "vm-test+bake.yaml", testSiteYAML(t, sysctlValue))
}

func testSiteYAML(t testing.TB, sysctlValue string) string {
	t.Helper()
	b, err := templates.FS.ReadFile("examples/vm-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "target: debian-12\n", fmt.Sprintf(
		"target: debian-12\noperator:\n  password_hash: %q\nsysctl:\n  enabled: true\n  set:\n    net.core.somaxconn: %q\n", testHash, sysctlValue), 1)
	return y
}

func parseSite(t testing.TB, name, y string) (*spec.Site, *spec.Node) {
	t.Helper()
	site, err := spec.Parse(name, []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return site, &site.Nodes[0]
}

func renderSeed(t testing.TB, site *spec.Site, n *spec.Node) render.Files {
	t.Helper()
	r, err := render.New(render.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.Node(site, n)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// One bake per test binary: the VM tests below share it.
var (
	bakeOnce sync.Once
	baked    struct {
		opts   Options
		res    Result
		err    error
		dir    string
		wall   time.Duration
		img    qemu.Image
		accel  vm.Accel
		output string
		// The payload inputs (testing/payloadfix) and the disk built from them.
		fix     payloadfix.Fixture
		payload string
		console bytes.Buffer // the bake's whole console; read after Bake returns
	}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if baked.dir != "" {
		os.RemoveAll(baked.dir)
	}
	os.Exit(code)
}

func needBake(t testing.TB) {
	t.Helper()
	img := qemu.Need(t)
	fx := payloadfix.Need(t) // cached; here, where it may skip or fail the test
	bakeOnce.Do(func() {
		baked.fix = fx
		accel, err := qemu.Accel(context.Background(), img)
		if err != nil {
			baked.err = err
			return
		}
		dir, err := os.MkdirTemp("", "bainode-bake-test-")
		if err != nil {
			baked.err = err
			return
		}
		baked.dir, baked.img, baked.accel = dir, img, accel
		// The image carries Docker, the Python with the agent's venv and
		// an image, from a payload disk: the bake is offline.
		site, n := bakedSite(t)
		baked.payload, baked.err = bakePayload(t, dir, n)
		if baked.err != nil {
			return
		}
		baked.opts = Options{
			Base: img.Disk, BaseFormat: vm.FormatQCOW2,
			Seed: renderSeed(t, site, n), Payload: baked.payload,
			Output: filepath.Join(dir, "baked.qcow2"), Format: FormatQCOW2,
			Accel: accel, Timeout: accel.Timeout(15 * time.Minute), MemoryMiB: 1536, CPUs: 2,
			Version: "test", HashCache: filepath.Join(dir, "hashes"),
			Progress: qemu.Log(t), Console: &baked.console,
		}
		if !img.Bootloader {
			baked.opts.Kernel, baked.opts.Initrd, baked.opts.Append = img.Kernel, img.Initrd, img.Append
		}
		start := time.Now()
		// Not t.Context(): the bake outlives the first test that asks for it.
		baked.res, baked.err = Bake(context.Background(), baked.opts)
		baked.wall = time.Since(start)
		baked.output = baked.opts.Output
		t.Logf("bake wall time %s (%s)", baked.wall.Round(time.Second), accel)
	})
	if baked.err != nil {
		t.Fatalf("bake: %v", baked.err)
	}
}

// TestBakeSealed bakes the test base offline (restrict=on) for vm-test's
// role, with Docker, the Python and an image from a payload disk, and checks the manifest, the seal report, a second bake that must be
// a cache hit, and a byte scan of the output for the bake seed's marker.
func TestBakeSealed(t *testing.T) {
	needBake(t)
	m := baked.res.Manifest
	if baked.res.CacheHit {
		t.Fatal("the first bake was a cache hit")
	}
	rep := m.Seal
	if rep.CloudInitStatus != "done" || len(rep.Errors) > 0 {
		t.Fatalf("seal report: status %q, errors %q", rep.CloudInitStatus, rep.Errors)
	}
	if rep.MachineID != "uninitialized" { // Debian 12: systemd 252
		t.Errorf("machine-id sealed as %q, want uninitialized (systemd %s)", rep.MachineID, rep.SystemdVersion)
	}
	if len(rep.BakeMachineID) != 32 || len(rep.BakeHostKeys) == 0 {
		t.Errorf("seal report lacks the bake's machine-id %q or host keys %q", rep.BakeMachineID, rep.BakeHostKeys)
	}
	if len(m.Packages) < 100 || len(m.Kernels) == 0 {
		t.Errorf("manifest: %d packages, kernels %q", len(m.Packages), m.Kernels)
	}
	sum, size, err := sha256File(baked.output)
	if err != nil {
		t.Fatal(err)
	}
	if sum != m.Output.SHA256 || size != m.Output.Size {
		t.Errorf("output sha256/size %s/%d, manifest says %s/%d", sum, size, m.Output.SHA256, m.Output.Size)
	}
	// The apt timers were held during the bake and are back as they were.
	units := map[string]HeldUnit{}
	for _, h := range rep.Held {
		units[h.Unit] = h
	}
	for _, u := range heldUnits {
		h, ok := units[u]
		if !ok || !h.Held || h.After != h.Before {
			t.Errorf("held unit %s: %+v (in the report: %v)", u, h, ok)
		}
	}
	if !slices.Contains(rep.Actions, "held units restored") {
		t.Errorf("seal actions %q lack the restore of the held units", rep.Actions)
	}
	// qcow2 is zstd-compressed by default, and says so.
	if m.Compression.Type != "zstd" || m.Compression.Threads < 2 || qcow2Type(t, baked.output) != "zstd" {
		t.Errorf("compression: manifest %+v, image %q", m.Compression, qcow2Type(t, baked.output))
	}
	on, _ := ReadManifest(ManifestPath(baked.output))
	if on.Key != m.Key || len(on.Steps) != 5 { // the manifest step is timed after it wrote the file
		t.Errorf("manifest on disk: key %q steps %d", on.Key, len(on.Steps))
	}

	// Unchanged inputs: a cache hit that leaves the output alone.
	fi0, _ := os.Stat(baked.output)
	o := baked.opts
	o.Progress = qemu.Log(t)
	again, err := Bake(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	fi1, _ := os.Stat(baked.output)
	if !again.CacheHit || again.Manifest.Key != m.Key || !fi1.ModTime().Equal(fi0.ModTime()) {
		t.Errorf("second bake: cache hit %v, key %s (want %s), output rewritten %v", again.CacheHit, again.Manifest.Key, m.Key, !fi1.ModTime().Equal(fi0.ModTime()))
	}

	// Nothing of the bake seed on the disk, not even in freed blocks: the
	// marker is in the seed's user-data and meta-data only.
	raw := filepath.Join(t.TempDir(), "out.raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", baked.output, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, out)
	}
	for _, needle := range []string{baked.res.Marker, "bainode bake seed", "BEGIN BAINODE SEAL REPORT"} {
		if n := countInFile(t, raw, needle); n > 0 {
			t.Errorf("the sealed image holds %q %d times", needle, n)
		}
	}
	// The password hash is in /etc/shadow (and its backup) and nowhere else.
	if n := countInFile(t, raw, testHash); n > 2 {
		t.Errorf("the password hash is on the image %d times; only /etc/shadow and shadow- may hold it", n)
	}
}

func qcow2Type(t *testing.T, path string) string {
	out, err := exec.Command("qemu-img", "info", "--output=json", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Specific struct {
			Data struct {
				CompressionType string `json:"compression-type"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	json.Unmarshal(out, &info)
	return info.Specific.Data.CompressionType
}

// countInFile counts needle in a big file, in chunks.
func countInFile(t *testing.T, path, needle string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 8<<20)
	var carry []byte
	n := 0
	for {
		k, err := f.Read(buf)
		if k > 0 {
			chunk := append(carry, buf[:k]...)
			n += bytes.Count(chunk, []byte(needle))
			keep := min(len(needle)-1, len(chunk))
			carry = append([]byte(nil), chunk[len(chunk)-keep:]...)
		}
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestBakeInterrupted cancels a bake (Ctrl-C) once its QEMU runs: the
// QEMU is gone, and no work dir and no output is left.
func TestBakeInterrupted(t *testing.T) {
	img := qemu.Need(t)
	accel, err := qemu.Accel(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	site, n := testSite(t, "4096")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pw := &pidWatch{cancel: cancel, log: qemu.Log(t)}
	o := Options{
		Base: img.Disk, BaseFormat: vm.FormatQCOW2, Seed: renderSeed(t, site, n),
		Output: filepath.Join(dir, "out.qcow2"), Accel: accel, Version: "test", Progress: pw,
	}
	if !img.Bootloader {
		o.Kernel, o.Initrd, o.Append = img.Kernel, img.Initrd, img.Append
	}
	_, err = Bake(ctx, o)
	if err == nil || !strings.Contains(err.Error(), "boot and seal") {
		t.Fatalf("interrupted bake: err %v, want one from the boot", err)
	}
	if pw.pid == 0 {
		t.Fatal("no qemu pid seen")
	}
	if err := syscall.Kill(pw.pid, 0); err == nil {
		t.Errorf("qemu %d still runs", pw.pid)
	}
	left, _ := os.ReadDir(dir)
	for _, e := range left {
		t.Errorf("left behind: %s", e.Name())
	}
}

// pidWatch reads QEMU's pid from the progress and cancels right then.
type pidWatch struct {
	cancel context.CancelFunc
	log    io.Writer
	pid    int
}

func (p *pidWatch) Write(b []byte) (int, error) {
	if m := regexp.MustCompile(`qemu pid (\d+)`).FindSubmatch(b); m != nil && p.pid == 0 {
		fmt.Sscan(string(m[1]), &p.pid)
		p.cancel()
	}
	return p.log.Write(b)
}
