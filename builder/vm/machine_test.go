package vm

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needTools skips without QEMU outside CI; in CI a missing tool is a failure.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found (CI=true: install qemu-system-x86 and qemu-utils)", tool)
			}
			t.Skipf("%s not found: install qemu-system-x86 and qemu-utils to run this test", tool)
		}
	}
}

// blankDisk is a raw disk with no boot sector: SeaBIOS finds nothing to boot
// and QEMU keeps running until it is killed.
func blankDisk(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "blank.raw")
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// alive tells whether pid exists and is not a zombie waiting for its reaper.
func alive(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// "pid (comm) state ...": comm may hold spaces, the state follows ") ".
	i := strings.LastIndex(string(stat), ") ")
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

func TestTimeoutLeavesNoQEMU(t *testing.T) {
	needTools(t, "qemu-system-x86_64", "qemu-img")
	disk := blankDisk(t)
	sum := fileSum(t, disk)
	keep := t.TempDir()
	serialLog := filepath.Join(keep, "serial.log")
	overlay := filepath.Join(keep, "overlay.qcow2")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m, err := Start(ctx, Config{Disk: disk, DiskFormat: FormatRaw, Overlay: overlay,
		SerialLog: serialLog, NoNetwork: true})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	pid := m.PID()
	if !alive(pid) {
		t.Fatalf("qemu pid %d not running right after Start", pid)
	}

	err = m.WaitFor(ctx, "never printed")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor: got %v, want a deadline error", err)
	}
	// The deadline alone kills QEMU, before anyone calls Stop.
	waitCtx, waitCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer waitCancel()
	if err := m.Wait(waitCtx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait after deadline: got %v, want qemu killed", err)
	}
	if alive(pid) {
		t.Errorf("qemu pid %d still exists after the deadline", pid)
	}

	dir := m.dir
	if err := m.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := m.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s: got %v, want it removed", dir, err)
	}
	for _, p := range []string{serialLog, overlay} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("caller's file: %v, want it kept", err)
		}
	}
	if got := fileSum(t, disk); got != sum {
		t.Errorf("input disk changed")
	}
}

func TestStopKillsRunningQEMU(t *testing.T) {
	needTools(t, "qemu-system-x86_64", "qemu-img")
	m, err := Start(context.Background(), Config{Disk: blankDisk(t), DiskFormat: FormatRaw, NoNetwork: true})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	pid := m.PID()
	time.Sleep(300 * time.Millisecond)
	if !alive(pid) {
		t.Fatalf("qemu pid %d exited early: %v", pid, m.Wait(context.Background()))
	}
	// The throwaway overlay lives in the temp dir, flushes ignored.
	want := "file=" + filepath.Join(m.dir, "disk.qcow2") + ",format=qcow2,cache=unsafe,if=virtio"
	if !slices.Contains(m.Args(), want) {
		t.Errorf("Args = %q, want a -drive %q", m.Args(), want)
	}
	if err := m.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if alive(pid) {
		t.Errorf("qemu pid %d still exists after Stop", pid)
	}
}

func TestStartReportsQEMUErrors(t *testing.T) {
	needTools(t, "qemu-system-x86_64", "qemu-img")
	// A kernel QEMU cannot load makes it exit at once with a message.
	kernel := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(kernel, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Start(context.Background(), Config{Kernel: kernel, NoNetwork: true})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer m.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = m.WaitFor(ctx, "Linux version")
	if err == nil || !strings.Contains(err.Error(), "qemu exited before") {
		t.Errorf("WaitFor: got %v, want qemu exited before ...", err)
	}
}

func TestProbeAccelCaches(t *testing.T) {
	needTools(t, "qemu-system-x86_64", "qemu-img")
	// Not a kernel: under KVM (if any) QEMU refuses it, so the probe answers
	// TCG quickly on any machine.
	kernel := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(kernel, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	ctx := context.Background()

	got, err := ProbeAccel(ctx, kernel, "", cache)
	if err != nil {
		t.Fatalf("ProbeAccel: %v", err)
	}
	if got != TCG {
		t.Errorf("ProbeAccel(garbage kernel) = %q, want %q", got, TCG)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "accel-*.json"))
	if len(files) != 1 {
		t.Fatalf("cache files: got %q, want one", files)
	}

	// Rewrite the cached answer: if the second call booted, it would say TCG.
	var rec probeRecord
	b, _ := os.ReadFile(files[0])
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("cache file: %v", err)
	}
	if rec.Reason == "" || rec.Key.KernelSHA256 == "" || rec.Key.QEMU == "" {
		t.Errorf("cache record incomplete: %+v", rec)
	}
	rec.Accel = KVM
	b, _ = json.Marshal(rec)
	if err := os.WriteFile(files[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err = ProbeAccel(ctx, kernel, "", cache)
	if err != nil {
		t.Fatalf("second ProbeAccel: %v", err)
	}
	if got != KVM {
		t.Errorf("second ProbeAccel = %q, want the cached %q (it probed again)", got, KVM)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second ProbeAccel took %v", d)
	}

	// Another kernel is another key: the rewritten answer must not leak.
	if err := os.WriteFile(kernel, []byte("another non-kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err = ProbeAccel(ctx, kernel, "", cache); err != nil || got != TCG {
		t.Errorf("ProbeAccel(new kernel) = %q, %v; want %q", got, err, TCG)
	}
}

func TestTimeoutScale(t *testing.T) {
	if got := KVM.Timeout(time.Minute); got != time.Minute {
		t.Errorf("KVM.Timeout(1m) = %v, want 1m", got)
	}
	if got, want := TCG.Timeout(time.Minute), time.Duration(tcgScale)*time.Minute; got != want {
		t.Errorf("TCG.Timeout(1m) = %v, want %v", got, want)
	}
}

func TestDetectFormat(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "a.raw")
	qcow := filepath.Join(dir, "a.qcow2")
	os.WriteFile(raw, make([]byte, 512), 0o644)
	os.WriteFile(qcow, append([]byte("QFI\xfb"), make([]byte, 508)...), 0o644)
	for path, want := range map[string]string{raw: FormatRaw, qcow: FormatQCOW2} {
		if got, err := DetectFormat(path); err != nil || got != want {
			t.Errorf("DetectFormat(%s) = %q, %v; want %q", filepath.Base(path), got, err, want)
		}
	}
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestForwards checks QEMU accepts both forward forms: it connects to the
// guestfwd target on 127.0.0.1 at start and listens on the hostfwd port.
func TestForwards(t *testing.T) {
	needTools(t, "qemu-system-x86_64", "qemu-img")
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := target.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	hostPort := freePort(t)

	m, err := Start(t.Context(), Config{
		Disk: blankDisk(t), DiskFormat: FormatRaw,
		GuestForwards: []GuestForward{{GuestAddr: "10.0.2.100:80", HostAddr: target.Addr().String()}},
		HostForwards:  []HostForward{{HostPort: hostPort, GuestPort: 22}},
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer m.Stop()

	select {
	case err := <-accepted:
		if err != nil {
			t.Errorf("accept guestfwd connection: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("qemu did not connect to the guestfwd target (stderr %q)", m.stderr.String())
	}
	var c net.Conn
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if c, err = net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort))); err == nil {
			c.Close()
			break
		}
	}
	if err != nil {
		t.Errorf("hostfwd port %d: %v", hostPort, err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestUEFIFirmware(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: OVMF takes half a minute to reach its shell under TCG")
	}
	needTools(t, "qemu-system-x86_64", "qemu-img")
	code, vars, err := FindOVMF()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	sum := fileSum(t, vars)
	ctx, cancel := context.WithTimeout(t.Context(), TCG.Timeout(20*time.Second))
	defer cancel()
	m, err := Start(ctx, Config{Disk: blankDisk(t), DiskFormat: FormatRaw, Firmware: UEFI, NoNetwork: true})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer m.Stop()
	// Nothing to boot on the disk: OVMF falls back to its built-in shell.
	if err := m.WaitFor(ctx, "UEFI Interactive Shell"); err != nil {
		t.Errorf("WaitFor: %v\nconsole: %q", err, tail(m.Output(), 500))
	}
	if !slices.Contains(m.Args(), "if=pflash,format=raw,unit=0,readonly=on,file="+code) {
		t.Errorf("Args = %q, want the OVMF code %s read-only", m.Args(), code)
	}
	if fileSum(t, vars) != sum {
		t.Errorf("OVMF variable template %s was written", vars)
	}
}

// TestQEMUDiesWithParent kills a process that started QEMU, with no chance
// to clean up, and checks that Pdeathsig took QEMU down too.
func TestQEMUDiesWithParent(t *testing.T) {
	if os.Getenv("BAINODE_VM_HELPER") == "1" {
		m, err := Start(context.Background(), Config{Disk: os.Getenv("BAINODE_VM_DISK"), DiskFormat: FormatRaw, NoNetwork: true})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("pid", m.PID(), m.dir)
		time.Sleep(time.Minute)
		os.Exit(1)
	}
	needTools(t, "qemu-system-x86_64", "qemu-img")

	child := exec.Command(os.Args[0], "-test.run=^TestQEMUDiesWithParent$")
	child.Env = append(os.Environ(), "BAINODE_VM_HELPER=1", "BAINODE_VM_DISK="+blankDisk(t))
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	var pid int
	var dir string
	if _, err := fmt.Fscanf(out, "pid %d %s\n", &pid, &dir); err != nil {
		t.Fatalf("helper did not report a qemu pid: %v", err)
	}
	// Nobody calls Stop in the killed helper: its temp dir is ours to remove.
	if !strings.HasPrefix(filepath.Base(dir), "bainode-vm-") {
		t.Fatalf("helper reported temp dir %q", dir)
	}
	defer os.RemoveAll(dir)
	if !alive(pid) {
		t.Fatalf("qemu pid %d not running", pid)
	}
	child.Process.Kill()
	child.Wait()
	for deadline := time.Now().Add(10 * time.Second); alive(pid) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("qemu pid %d outlived the process that started it", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// TestWaitForSplitMarker feeds the console by hand: a marker split across
// writes is found, and an exit before the marker is reported.
func TestWaitForSplitMarker(t *testing.T) {
	m := &Machine{con: newConsole(nil), stderr: &tailBuffer{max: 64}, done: make(chan struct{})}
	found := make(chan error, 1)
	go func() { found <- m.WaitFor(context.Background(), "cloud-init done") }()
	for _, part := range []string{"boot...\r\nclo", "ud-init ", "do", "ne\r\n"} {
		time.Sleep(10 * time.Millisecond)
		m.con.Write([]byte(part))
	}
	select {
	case err := <-found:
		if err != nil {
			t.Errorf("WaitFor: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitFor did not see the split marker")
	}

	m.waitErr = errors.New("exit status 1")
	close(m.done)
	err := m.WaitFor(context.Background(), "never")
	if err == nil || !strings.Contains(err.Error(), `qemu exited before "never" appeared: exit status 1`) {
		t.Errorf("WaitFor after exit: got %v", err)
	}
}
