//go:build linux

package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/lablup/bainode/builder/cpio"
	"github.com/lablup/bainode/builder/vm"
	"github.com/lablup/bainode/testing/qemu"
)

// The fault tests boot the real deploy environment (the base's kernel,
// busybox, a static bainode) directly with -kernel/-initrd, with the node's
// config appended to the initramfs as bainoded's node.cpio would be, and
// a loopback stand-in of bainoded behind a guestfwd (restrict=on). Each
// reads the VM's disks back after QEMU is gone: whatever the fault, the
// disk holds either the whole image or no partition table and no boot
// code (the agent wipes the first and last MiB first and writes the
// image's first MiB last), or it is untouched.

const (
	vmBase   = "http://10.0.2.100"
	vmGuest  = "10.0.2.100:80"
	vmStayed = "staying in the deploy environment"
)

var faultEnv struct {
	sync.Once
	env Env
	err error
}

// needDeployEnv assembles the deploy environment once for the package.
func needDeployEnv(t *testing.T) (Env, vm.Accel) {
	t.Helper()
	in := NeedEnvInputs(t)
	faultEnv.Do(func() {
		dir, err := os.MkdirTemp("", "bainode-deploy-env-")
		if err != nil {
			faultEnv.err = err
			return
		}
		faultEnv.env, faultEnv.err = Assemble(in, dir)
	})
	if faultEnv.err != nil {
		t.Fatal(faultEnv.err)
	}
	accel, err := qemu.Accel(t.Context(), qemu.Need(t))
	if err != nil {
		t.Fatalf("accel: %v", err)
	}
	return faultEnv.env, accel
}

// oldSystem is a disk of size bytes holding an old system: boot code and an
// MBR at its start, a mark at its end.
func oldSystem(t *testing.T, path string, size int64) []byte {
	t.Helper()
	b := make([]byte, size)
	b[0], b[1], b[510], b[511] = 0xeb, 0x63, 0x55, 0xaa
	b[446+4] = 0x83
	copy(b[size-512:], "old system's last sector")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// vmRun is what a deploy VM left behind.
type vmRun struct {
	console  string
	rebooted bool     // the agent rebooted (QEMU runs with -no-reboot)
	disks    []string // raw copies of the disks after QEMU exited
}

// bootAgent boots the deploy environment with cfg against h, with one
// disk per size, and waits until the agent reboots or the environment
// says it stays.
func bootAgent(t *testing.T, h http.Handler, cfg Config, sizes ...int64) (vmRun, [][]byte) {
	t.Helper()
	env, accel := needDeployEnv(t)
	dir := t.TempDir()
	initrd, err := os.ReadFile(env.Initrd)
	if err != nil {
		t.Fatal(err)
	}
	// The kernel reads an uncompressed archive only at a 4-byte boundary.
	initrd = append(initrd, make([]byte, (4-len(initrd)%4)%4)...)
	js, _ := json.Marshal(cfg)
	a := cpio.NewArchive()
	a.File(ConfigFile, 0o600, js)
	var node bytes.Buffer
	a.WriteTo(&node)
	nodeInitrd := filepath.Join(dir, "initrd.img")
	if err := os.WriteFile(nodeInitrd, append(initrd, node.Bytes()...), 0o600); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, ln, h)
	port := ln.Addr().(*net.TCPAddr).Port

	var before [][]byte
	var drives []vm.Drive
	for i, size := range sizes {
		base := filepath.Join(dir, "disk"+string(rune('a'+i))+".raw")
		before = append(before, oldSystem(t, base, size))
		// writethrough: the overlay is complete at every moment, even when
		// QEMU is killed with the agent still waiting.
		drives = append(drives, vm.Drive{Path: base, Format: vm.FormatRaw, Cache: "writethrough", Overlay: base + ".qcow2"})
	}
	cfgVM := vm.Config{
		Accel: accel, MemoryMiB: 768, CPUs: 1,
		Kernel: env.Kernel, Initrd: nodeInitrd, Append: "console=ttyS0,115200n8",
		Disk: drives[0].Path, DiskFormat: vm.FormatRaw, Overlay: drives[0].Overlay, DiskCache: drives[0].Cache,
		Drives:        drives[1:],
		GuestForwards: []vm.GuestForward{{GuestAddr: vmGuest, Cmd: "/bin/busybox nc 127.0.0.1 " + strconv.Itoa(port)}},
		NoReboot:      true,
	}
	start := time.Now()
	m := qemu.Boot(t, cfgVM)
	ctx, cancel := context.WithTimeout(t.Context(), accel.Timeout(4*time.Minute))
	defer cancel()
	var run vmRun
	if err := m.WaitFor(ctx, vmStayed); err != nil {
		if ctx.Err() != nil {
			t.Fatalf("the deploy environment neither rebooted nor stayed: %v", err)
		}
		run.rebooted = true
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	run.console = m.Output()
	t.Logf("deploy environment boot to the agent's end: %s (rebooted %v)", time.Since(start).Round(time.Second), run.rebooted)
	for _, d := range drives {
		raw := d.Overlay + ".raw"
		if out, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", d.Overlay, raw).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img convert: %v\n%s", err, out)
		}
		run.disks = append(run.disks, raw)
	}
	if strings.Contains(run.console, cfg.Token) {
		t.Error("the node's token shows on the console")
	}
	return run, before
}

func wantConsole(t *testing.T, run vmRun, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(run.console, l) {
			t.Errorf("console lacks %q; its end:\n%s", l, tailOf(run.console, 30))
		}
	}
}

func tailOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// checkUnbootable asserts that no firmware can boot the disk: its first
// and last MiB (boot code, MBR, GPT and backup GPT) are zero.
func checkUnbootable(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !isZero(b[:headSize]) || !isZero(b[len(b)-headSize:]) {
		t.Errorf("%s: after the failed deploy the disk's first or last MiB is not zero: a firmware could boot a half-written disk", path)
	}
	if _, err := exec.LookPath("sfdisk"); err != nil {
		t.Fatal("sfdisk (fdisk) is not installed")
	}
	if out, err := exec.Command("sfdisk", "--dump", path).CombinedOutput(); err == nil {
		t.Errorf("sfdisk finds a partition table on the failed disk:\n%s", out)
	}
}

// corruptImage is the image with one flipped byte inside a stored
// (incompressible) block of a frame without zstd's own checksum: the
// decoder cannot tell, only the manifest's sha256 can.
func corruptImage(t *testing.T, raw []byte) (good, bad []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf, zstd.WithEncoderCRC(false))
	zw.Write(raw)
	zw.Close()
	good = buf.Bytes()
	for at := len(good) / 3; at < len(good); at += 1000 {
		bad = bytes.Clone(good)
		bad[at] ^= 0x01
		dec, _ := zstd.NewReader(bytes.NewReader(bad))
		out, err := dec.DecodeAll(bad, nil)
		dec.Close()
		if err == nil && len(out) == len(raw) && !bytes.Equal(out, raw) {
			return good, bad
		}
	}
	t.Fatal("no byte of the image could be flipped unnoticed by zstd")
	return nil, nil
}

// TestVMFaultChecksum serves an image that went bad on the server (one
// flipped byte the decoder accepts). The agent streams it all, finds the
// sha256 wrong, reports failed and stays; the disk cannot boot.
func TestVMFaultChecksum(t *testing.T) {
	raw, _ := testImage(t)
	good, bad := corruptImage(t, raw)
	t.Parallel()
	is := &imageServer{t: t, zst: bad}
	run, _ := bootAgent(t, is, agentConfig(vmBase, good), 64<<20)
	if run.rebooted {
		t.Fatal("the agent rebooted after a corrupted image")
	}
	wantConsole(t, run, "bainode-deploy: FAILED: checksum mismatch", vmStayed, "the disk holds no bootable system")
	if got := is.stageList(); got != "deploying,failed" {
		t.Errorf("stages %q, want deploying,failed", got)
	}
	checkUnbootable(t, run.disks[0])
}

// TestVMFaultResume cuts the image download once, a third of the way: the
// agent resumes with a Range request and deploys the whole image.
func TestVMFaultResume(t *testing.T) {
	raw, zst := testImage(t)
	t.Parallel()
	is := &imageServer{t: t, zst: zst, cut: int64(len(zst)) / 3, maxCuts: 1}
	run, _ := bootAgent(t, is, agentConfig(vmBase, zst), 64<<20)
	if !run.rebooted {
		t.Fatalf("the agent did not deploy over a cut connection; console:\n%s", tailOf(run.console, 30))
	}
	wantConsole(t, run, "download: resumed at byte", "bainode-deploy: deployed:", "download resumed 1 times")
	var ranged []string
	is.mu.Lock()
	for _, r := range is.ranges {
		if r != "" {
			ranged = append(ranged, r)
		}
	}
	is.mu.Unlock()
	if len(ranged) != 1 {
		t.Errorf("Range requests %q, want one after the cut", ranged)
	}
	if got := is.stageList(); got != "deploying,deployed" {
		t.Errorf("stages %q, want deploying,deployed", got)
	}
	disk, err := os.ReadFile(run.disks[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(disk[:446], raw[:446]) || !bytes.Equal(disk[headSize:len(raw)], raw[headSize:]) {
		t.Error("the disk does not hold the image after the resume")
	}
	checkSfdisk(t, run.disks[0], "mbr")
}

// TestVMFaultTwoDisks gives the node two disks and no rule: the agent
// refuses to guess, reports why, and touches neither disk.
func TestVMFaultTwoDisks(t *testing.T) {
	_, zst := testImage(t)
	t.Parallel()
	is := &imageServer{t: t, zst: zst}
	run, before := bootAgent(t, is, agentConfig(vmBase, zst), 64<<20, 64<<20)
	if run.rebooted {
		t.Fatal("the agent rebooted although it had to refuse")
	}
	wantConsole(t, run, "bainode-deploy: FAILED: ", vmStayed)
	if !strings.Contains(run.console, ErrAmbiguous.Error()) {
		t.Errorf("the console does not say %q; its end:\n%s", ErrAmbiguous, tailOf(run.console, 20))
	}
	if got := is.stageList(); got != "failed" {
		t.Errorf("stages %q, want failed", got)
	}
	is.mu.Lock()
	detail := ""
	if len(is.stages) > 0 {
		detail = is.stages[0].Detail
	}
	is.mu.Unlock()
	if !strings.Contains(detail, "vda") || !strings.Contains(detail, "vdb") {
		t.Errorf("the failure detail %q does not name both candidate disks", detail)
	}
	for i, p := range run.disks {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, before[i]) {
			t.Errorf("disk %d changed although the agent refused to pick one", i)
		}
	}
	if is.ranges != nil {
		t.Errorf("the image was downloaded (%d requests) although no disk was chosen", len(is.ranges))
	}
}
