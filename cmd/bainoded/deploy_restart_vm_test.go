//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/lablup/bainode/builder/bake"
	"github.com/lablup/bainode/builder/deploy"
	"github.com/lablup/bainode/builder/vm"
	"github.com/lablup/bainode/testing/deployfix"
	"github.com/lablup/bainode/testing/qemu"
)

// smallImage writes a 24 MiB raw MBR disk (boot code, one partition of
// random bytes and a zero stretch) as raw.zst with its bake manifest.
func smallImage(t *testing.T, dir string) (raw []byte, path string) {
	t.Helper()
	raw = make([]byte, 24<<20)
	rng := rand.NewChaCha8([32]byte{7})
	rng.Read(raw[1<<20 : 14<<20])
	rng.Read(raw[20<<20:])
	raw[0], raw[1] = 0xeb, 0x63
	raw[446+4] = 0x83
	le32(raw[446+8:], 2048)
	le32(raw[446+12:], uint32(len(raw)/512-2048))
	raw[510], raw[511] = 0x55, 0xaa
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	path = filepath.Join(dir, "small.raw.zst")
	sum := sha256.Sum256(buf.Bytes())
	m, _ := json.Marshal(bake.Manifest{Version: 1, Format: bake.FormatRawZst, Created: "2026-01-01T00:00:00Z",
		Output: bake.FileSum{Path: "small.raw.zst", SHA256: hex.EncodeToString(sum[:]), Size: int64(buf.Len())}})
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bake.ManifestPath(path), m, 0o644); err != nil {
		t.Fatal(err)
	}
	return raw, path
}

func le32(b []byte, v uint32) { b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24) }

// crashProxy forwards connections to bainoded. Halfway through the first
// image response it kills bainoded (SIGKILL, as a crash would), cuts the
// guest's connection, and starts bainoded again on the same address and
// data a few seconds later; meanwhile guest connections are closed at once,
// as a refused connection would be.
type crashProxy struct {
	target      string
	cutAt       int64  // bytes of the image response let through
	kill, start func() // bainoded

	mu  sync.Mutex
	cut bool
}

func (p *crashProxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.conn(c)
	}
}

func (p *crashProxy) conn(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	var image atomic.Bool
	go func() {
		// Requests follow one another on a connection: once the guest has
		// asked for the image, the rest of the answer stream is the image.
		var seen []byte
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				seen = append(seen[max(0, len(seen)-32):], buf[:n]...)
				if bytes.Contains(seen, []byte("GET /images/")) {
					image.Store(true)
				}
				if _, err := s.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				s.(*net.TCPConn).CloseWrite()
				return
			}
		}
	}()
	var sent int64
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if image.Load() {
				p.mu.Lock()
				first := !p.cut
				p.mu.Unlock()
				if first && sent+int64(n) >= p.cutAt {
					c.Write(buf[:p.cutAt-sent])
					p.mu.Lock()
					p.cut = true
					p.mu.Unlock()
					// Down before the guest's connection closes, and
					// for a while: the agent's retries find no server.
					p.kill()
					go p.start()
					return
				}
				sent += int64(n)
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestVMDeployRestart kills bainoded halfway through the image download and
// starts it again: the real deploy environment (booted directly, its config
// fetched with bainode.config=) resumes with a Range request against the new
// bainoded, whose store still has the deploying event; it then reports
// deployed, and the disk holds the image.
func TestVMDeployRestart(t *testing.T) {
	img := qemu.Need(t)
	accel, err := qemu.Accel(t.Context(), img)
	if err != nil {
		t.Fatalf("accel: %v", err)
	}
	envDir := deployfix.Env(t, img)
	t.Parallel()
	dir := t.TempDir()
	raw, image := smallImage(t, dir)
	zst, _ := os.Stat(image)

	x := newImageDeploy(t, dir, envDir, image)
	addr, args := x.addr, x.args
	var dmu sync.Mutex
	d := startDaemon(t, args...)
	restarts := 0
	t.Cleanup(func() {
		if t.Failed() {
			dmu.Lock()
			t.Logf("bainoded output:\n%s", tail(d.out.String(), 6000))
			dmu.Unlock()
		}
	})
	ctx := t.Context()
	fc := x.register(t)

	proxy := &crashProxy{target: addr, cutAt: zst.Size() / 2}
	proxy.kill = func() {
		dmu.Lock()
		defer dmu.Unlock()
		d.cmd.Process.Signal(syscall.SIGKILL)
		err := <-d.exited
		d.exited <- err
		t.Logf("bainoded killed mid-download: %v", err)
	}
	proxy.start = func() {
		time.Sleep(3 * time.Second)
		dmu.Lock()
		defer dmu.Unlock()
		d = startDaemon(t, args...)
		restarts++
	}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	go proxy.serve(pl)

	disk := filepath.Join(dir, "disk.raw")
	old := make([]byte, 1<<20)
	old[0], old[510], old[511] = 0xeb, 0x55, 0xaa
	os.WriteFile(disk, old, 0o644)
	os.Truncate(disk, 64<<20)
	exe, _ := os.Executable()
	m := qemu.Boot(t, vm.Config{
		Accel: accel, MemoryMiB: 768, CPUs: 1,
		Kernel: filepath.Join(envDir, "vmlinuz"), Initrd: filepath.Join(envDir, "initrd.img"),
		Append: "console=ttyS0,115200n8 " + deploy.ConfigArg + "=" + guestBase + deploy.NodeConfigPath(qemuMAC),
		Disk:   disk, DiskFormat: vm.FormatRaw, Overlay: disk + ".qcow2", DiskCache: "writethrough",
		GuestForwards: []vm.GuestForward{{GuestAddr: guestAddr, Cmd: exe + " " + guestfwdArg + " " + pl.Addr().String()}},
		NoReboot:      true,
	})
	bootCtx, cancel := context.WithTimeout(ctx, accel.Timeout(5*time.Minute))
	defer cancel()
	start := time.Now()
	if err := m.Wait(bootCtx); err != nil {
		t.Fatalf("the deploy environment did not reboot: %v", err)
	}
	m.Stop()
	t.Logf("deploy environment boot to reboot across a bainoded restart: %s", time.Since(start).Round(time.Second))
	console := m.Output()
	for _, want := range []string{"download: resumed at byte", "retrying", "bainode-deploy: deployed:", "download resumed 1 times"} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	dmu.Lock()
	if restarts != 1 {
		t.Errorf("bainoded restarted %d times, want once mid-download", restarts)
	}
	dmu.Unlock()
	waitGet(t, http.DefaultClient, "http://"+addr+"/healthz").Body.Close()
	stages := deployStages(t, fc)
	if strings.Join(stages, ",") != "deploying,deployed" {
		t.Errorf("deploy stages %v, want deploying (before the crash), deployed (after)", stages)
	}
	script := readBody(waitGet(t, http.DefaultClient, "http://"+addr+"/ipxe/"+qemuMAC))
	if !strings.Contains(script, "sanboot") {
		t.Errorf("after the restart, the deployed node's boot script does not boot its disk:\n%s", script)
	}

	out := disk + ".out"
	if b, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", disk+".qcow2", out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, len(raw))
	if _, err := io.ReadFull(f, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:446], raw[:446]) || !bytes.Equal(got[510:512], raw[510:512]) || !bytes.Equal(got[1<<20:], raw[1<<20:]) {
		t.Error("the disk does not hold the image after the resumed download")
	}
}
