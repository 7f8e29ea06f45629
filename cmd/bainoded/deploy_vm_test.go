//go:build linux

package main

import (
	"context"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/fleet"
	"github.com/lablup/bainode/builder/verify"
	"github.com/lablup/bainode/builder/vm"
	"github.com/lablup/bainode/templates"
	"github.com/lablup/bainode/testing/deployfix"
	"github.com/lablup/bainode/testing/qemu"
)

// TestVMImageDeploy boots a machine with a blank disk from the network:
// QEMU's TFTP hands iPXE a script that chains to bainoded, which boots the
// deploy environment; the agent writes the role image and reboots; the
// second network boot goes to the disk, the system reads its seed from
// bainoded and passes the verifier.
func TestVMImageDeploy(t *testing.T) {
	img := qemu.Need(t)
	if !img.Bootloader {
		t.Fatal("the test base has no boot loader (no loop devices where it was built): a deployed disk could not boot")
	}
	accel, err := qemu.Accel(t.Context(), img)
	if err != nil {
		t.Fatalf("accel: %v", err)
	}
	exe, _ := os.Executable()
	image := deployfix.Image(t, img)
	envDir := deployfix.Env(t, img)
	t.Parallel() // with TestVMImageDeploySecureBoot: each boots mostly on one thread

	dir := t.TempDir()
	x := newImageDeploy(t, dir, envDir, image)
	addr := x.addr
	ctx := t.Context()
	fc := x.start(t)

	tftp := filepath.Join(dir, "tftp")
	os.MkdirAll(tftp, 0o755)
	os.WriteFile(filepath.Join(tftp, "boot.ipxe"), []byte("#!ipxe\nchain "+guestBase+"/ipxe/${mac:hexhyp}\n"), 0o644)
	blank := filepath.Join(dir, "blank.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", blank, "6G").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v\n%s", err, out)
	}

	start := time.Now()
	m := qemu.Boot(t, vm.Config{
		Accel: accel, MemoryMiB: 2048, CPUs: 2,
		Disk: blank, DiskFormat: vm.FormatQCOW2,
		TFTP: tftp, BootFile: "boot.ipxe",
		GuestForwards: []vm.GuestForward{{GuestAddr: guestAddr, Cmd: exe + " " + guestfwdArg + " " + addr}},
	})
	bootCtx, cancel := context.WithTimeout(ctx, accel.Timeout(25*time.Minute))
	defer cancel()
	if err := m.WaitFor(bootCtx, "bainode-deploy: deployed:"); err != nil {
		t.Fatalf("deploy: %v (after %s)", err, time.Since(start).Round(time.Second))
	}
	deployed := time.Since(start)
	t.Logf("blank disk to deployed: %s", deployed.Round(time.Second))
	if err := m.WaitFor(bootCtx, verify.EndMarker); err != nil {
		t.Fatalf("verifier report: %v (after %s)", err, time.Since(start).Round(time.Second))
	}
	total := time.Since(start)
	checkDeployedReport(t, m, total)

	// iPXE's own messages do not reach the serial console (no VGA here);
	// the deploy environment's do.
	if n := strings.Count(m.Output(), "bainode-deploy: environment up"); n != 1 {
		t.Errorf("the deploy environment booted %d times, want once: the reboot must go to the disk", n)
	}
	script := readBody(waitGet(t, http.DefaultClient, "http://"+addr+"/ipxe/"+qemuMAC))
	if !strings.Contains(script, "sanboot --no-describe --drive 0x80") {
		t.Errorf("the deployed node's boot script does not boot its disk:\n%s", script)
	}
	stages := deployStages(t, fc)
	if strings.Join(stages, ",") != "deploying,deployed" {
		t.Errorf("deploy stages %v, want deploying, deployed", stages)
	}
	if _, status, problem := checkProgress(ctx, fc); problem != "" {
		t.Errorf("cloud-init after deploy: %s", problem)
	} else if status.Deploy == nil || status.Deploy.Result != "deployed" {
		t.Errorf("status of bai-vm shows deploy %+v, want deployed", status.Deploy)
	}
	t.Logf("VM wall time: deployed after %s, verified after %s", deployed.Round(time.Second), total.Round(time.Second))
}

// imageDeploy is bainoded's setup for an image-mode deploy test: its
// flags (data in dir, the deploy environment, the role's image), its
// two addresses and its admin token.
type imageDeploy struct {
	args               []string
	addr, admin, token string
}

func newImageDeploy(t *testing.T, dir, envDir, image string) imageDeploy {
	t.Helper()
	token := "vm-test-admin-token-0123456789abcdef"
	tokenFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, admin := freeAddr(t), freeAddr(t)
	return imageDeploy{
		args: []string{"--data", filepath.Join(dir, "data"), "--listen", addr, "--admin-listen", admin,
			"--admin-token-file", tokenFile, "--base-url", guestBase, "--log-level", "info",
			"--deploy-env", envDir, "--image", "all-in-one=" + image},
		addr: addr, admin: admin, token: token,
	}
}

// start runs bainoded with x's flags (its output goes to the log of a
// failed test) and registers bai-vm.
func (x imageDeploy) start(t *testing.T) *fleet.Client {
	t.Helper()
	d := startDaemon(t, x.args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bainoded output:\n%s", tail(d.out.String(), 8000))
		}
	})
	return x.register(t)
}

// register waits for bainoded, then pushes vm-test and registers its node
// bai-vm by the guest's MAC.
func (x imageDeploy) register(t *testing.T) *fleet.Client {
	t.Helper()
	waitGet(t, http.DefaultClient, "http://"+x.addr+"/healthz").Body.Close()
	fc := &fleet.Client{BaseURL: "http://" + x.admin, Token: x.token}
	site, _ := fs.ReadFile(templates.FS, "examples/vm-test.yaml")
	if _, err := fc.PushSite(t.Context(), site); err != nil {
		t.Fatalf("push site: %v", err)
	}
	if _, err := fc.PutNode(t.Context(), fleet.Node{Hostname: "bai-vm", MACs: []string{qemuMAC}, Role: "all-in-one"}); err != nil {
		t.Fatalf("add node: %v", err)
	}
	return fc
}

// checkDeployedReport reads the verifier's report from a deployed node's
// console: every check passes, and the seed came from bainoded.
func checkDeployedReport(t *testing.T, m *vm.Machine, total time.Duration) {
	t.Helper()
	if ds := deployfix.Report(t, m, total); !strings.Contains(ds, guestBase+"/nocloud/bai-vm/") {
		t.Errorf("cloud-init data source %q, want the seed from %s/nocloud/bai-vm/", ds, guestBase)
	}
}

// deployStages lists bai-vm's deploy events, oldest first.
func deployStages(t *testing.T, fc *fleet.Client) []string {
	t.Helper()
	ev, err := fc.Events(t.Context(), "bai-vm", 0)
	if err != nil {
		t.Fatal(err)
	}
	var stages []string
	for _, e := range ev {
		if e.Stage == "deploy" {
			stages = append(stages, e.Result)
			t.Logf("deploy %s: %s", e.Result, e.Detail)
		}
	}
	return stages
}
