package gpustub

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/serve"
	"github.com/lablup/bainode/overlays"
)

// kernel is the test base's kernel; other is a release no machine runs,
// which stand-in modules are stamped with to be "for another kernel".
const other = Other

// needModules builds (or takes from the cache) modules for kernel with the
// given stamp; a host that cannot is a failure in CI, a skip elsewhere.
func needModules(t *testing.T, kernel, stamp string) string {
	t.Helper()
	dir, err := Modules(t.Context(), kernel, stamp)
	if err != nil {
		if os.Getenv("CI") != "true" && strings.Contains(err.Error(), ErrHost.Error()) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	return dir
}

// gateScript writes the embedded gate where bash can run it.
func gateScript(t *testing.T) string {
	t.Helper()
	b, err := fs.ReadFile(overlays.FS, "provision/bainode-gpu-gate")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bainode-gpu-gate")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeRoot is an installed system as the gate sees it: kernels with a
// vmlinuz and a modules directory, and modules installed into them.
type fakeRoot struct {
	t    *testing.T
	dir  string
	gate string
	bin  string // stand-in modprobe and systemctl: they would act on this host
}

func newRoot(t *testing.T, kernels ...string) *fakeRoot {
	r := &fakeRoot{t: t, dir: t.TempDir(), gate: gateScript(t), bin: t.TempDir()}
	for _, k := range kernels {
		r.kernel(k)
	}
	// modprobe and systemctl here would change this host: the stand-ins
	// record the call (modprobe "loads" into a proc/modules file).
	write(t, filepath.Join(r.bin, "modprobe"), "#!/bin/sh\necho \"$1\" >>\"$STUB_LOG\"\necho \"$(echo \"$1\" | tr - _) 16384 0 - Live 0x0\" >>\"$BAINODE_GPU_PROC_MODULES\"\n", 0o755)
	write(t, filepath.Join(r.bin, "systemctl"), "#!/bin/sh\necho \"systemctl $*\" >>\"$STUB_LOG\"\n", 0o755)
	write(t, filepath.Join(r.dir, "proc-modules"), "", 0o644)
	return r
}

func (r *fakeRoot) kernel(k string) {
	write(r.t, filepath.Join(r.dir, "boot", "vmlinuz-"+k), "not a kernel\n", 0o644)
	if err := os.MkdirAll(filepath.Join(r.dir, "lib", "modules", k, "kernel"), 0o755); err != nil {
		r.t.Fatal(err)
	}
}

// install copies the stand-in modules of mods into kernel k's tree.
func (r *fakeRoot) install(k, mods string) {
	for _, n := range Names {
		b, err := os.ReadFile(filepath.Join(mods, n+".ko"))
		if err != nil {
			r.t.Fatal(err)
		}
		write(r.t, filepath.Join(r.dir, "lib", "modules", k, "updates", "dkms", n+".ko"), string(b), 0o644)
	}
}

// run runs the gate in mode with the running kernel.
func (r *fakeRoot) run(running, mode string, env ...string) (string, int) {
	cmd := exec.Command("bash", r.gate, mode)
	cmd.Env = append(os.Environ(), "PATH="+r.bin+":"+os.Getenv("PATH"),
		"BAINODE_GPU_ROOT="+r.dir, "BAINODE_GPU_KERNEL="+running, "BAINODE_GPU_STATE="+filepath.Join(r.dir, "state"),
		"BAINODE_GPU_PROC_MODULES="+filepath.Join(r.dir, "proc-modules"), "STUB_LOG="+filepath.Join(r.dir, "stub.log"))
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatal(err)
	}
	return string(out), code
}

func (r *fakeRoot) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(r.dir, name))
	return string(b)
}

func write(t *testing.T, p, s string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
}

func wantIn(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// The gate's decisions, on installed systems laid out in a directory, with
// real modules (compiled here against the test base's kernel headers) and
// real modinfo; only modprobe and systemctl are stand-ins, because the
// kernel they would act on is this host's. Loading into a real kernel and
// the real reboot are proven in the VM test.
func TestGateDecisions(t *testing.T) {
	t.Parallel()
	kernel := baseKernel(t)
	match := needModules(t, kernel, kernel)
	wrong := needModules(t, kernel, other)

	t.Run("match", func(t *testing.T) {
		r := newRoot(t, kernel)
		r.install(kernel, match)
		out, code := r.run(kernel, "check")
		if code != 0 {
			t.Fatalf("check: exit %d\n%s", code, out)
		}
		out, _ = r.run(kernel, "kernels")
		if !strings.HasPrefix(out, kernel+" "+kernel+" ") {
			t.Errorf("kernels: got %q, want %q and its vermagic", out, kernel)
		}
		out, code = r.run(kernel, "node")
		if code != 0 {
			t.Fatalf("node: exit %d\n%s", code, out)
		}
		wantIn(t, "stub log", r.read("stub.log"), "nvidia\nnvidia-uvm\n")
		if got := r.read("state/gpu-gate.status"); got != "loaded "+kernel+" nvidia nvidia-uvm\n" {
			t.Errorf("status: got %q", got)
		}
		if strings.Contains(r.read("stub.log"), "reboot") {
			t.Error("a reboot was arranged for a module that matches")
		}
	})

	t.Run("wrong kernel", func(t *testing.T) {
		r := newRoot(t, kernel)
		r.install(kernel, wrong)
		msg := "kernel " + kernel + " has a nvidia module built for " + other
		out, code := r.run(kernel, "check")
		if code != 1 {
			t.Errorf("check: exit %d, want 1", code)
		}
		wantIn(t, "check", out, msg, "will not load")
		out, code = r.run(kernel, "node")
		if code != 1 {
			t.Errorf("node: exit %d, want 1", code)
		}
		wantIn(t, "node", out, msg)
		wantIn(t, "status", r.read("state/gpu-gate.status"), "failed "+kernel+" ", msg)
		if log := r.read("stub.log"); log != "" {
			t.Errorf("a mismatched module was acted on: %q", log)
		}
	})

	t.Run("missing", func(t *testing.T) {
		r := newRoot(t, kernel)
		out, code := r.run(kernel, "node")
		if code != 1 {
			t.Errorf("node: exit %d, want 1", code)
		}
		wantIn(t, "node", out, "no nvidia module for the running kernel "+kernel)
		out, code = r.run(kernel, "check")
		if code != 1 {
			t.Errorf("check: exit %d, want 1", code)
		}
		wantIn(t, "check", out, "no nvidia module for installed kernel(s) "+kernel)
	})

	// A new kernel came with the driver: the module exists only for it.
	// One reboot is arranged, never a second; on the next boot the gate
	// loads it when that kernel runs, and fails clearly when it does not.
	t.Run("new kernel", func(t *testing.T) {
		newMods := needModules(t, kernel, other) // built for "other", installed for it
		r := newRoot(t, kernel, other)
		r.install(other, newMods)
		out, code := r.run(kernel, "node")
		if code != 0 {
			t.Fatalf("node: exit %d\n%s", code, out)
		}
		wantIn(t, "node", out, "rebooting to load the NVIDIA driver")
		wantIn(t, "stub log", r.read("stub.log"), "systemctl enable bainode-gpu-gate.service\n",
			"systemctl start --no-block bainode-gpu-reboot.service\n")
		wantIn(t, "status", r.read("state/gpu-gate.status"), "reboot "+kernel+" ")
		// In a bake the image boots the new kernel, which has the module;
		// the running one has none: check wants every kernel.
		if out, code := r.run(kernel, "check"); code != 1 || !strings.Contains(out, "installed kernel(s) "+kernel) {
			t.Errorf("check: exit %d, want 1 naming %s\n%s", code, kernel, out)
		}

		// The reboot came back in the same kernel: fail, no second reboot.
		os.Remove(filepath.Join(r.dir, "stub.log"))
		out, code = r.run(kernel, "boot")
		if code != 1 {
			t.Errorf("boot in the old kernel: exit %d, want 1", code)
		}
		wantIn(t, "boot", out, "still has no nvidia module after the reboot", "not rebooting again")
		wantIn(t, "stub log", r.read("stub.log"), "systemctl disable bainode-gpu-gate.service")
		if strings.Contains(r.read("stub.log"), "reboot") {
			t.Error("the boot after the reboot arranged another")
		}
		out, code = r.run(kernel, "node")
		if code != 1 || !strings.Contains(out, "not rebooting again") {
			t.Errorf("node after the reboot: exit %d, want 1 and no second reboot\n%s", code, out)
		}

		// The reboot landed in the new kernel: loaded, passed.
		os.Remove(filepath.Join(r.dir, "stub.log"))
		out, code = r.run(other, "boot")
		if code != 0 {
			t.Fatalf("boot in the new kernel: exit %d\n%s", code, out)
		}
		wantIn(t, "stub log", r.read("stub.log"), "nvidia\nnvidia-uvm\n")
		if got := r.read("state/gpu-gate.status"); got != "loaded "+other+" nvidia nvidia-uvm\n" {
			t.Errorf("status: got %q", got)
		}
	})

	// The module name is a parameter; the extra modules may be none.
	t.Run("module parameter", func(t *testing.T) {
		r := newRoot(t, kernel)
		r.install(kernel, match)
		out, code := r.run(kernel, "node", "BAINODE_GPU_MODULE=nvidia-uvm", "BAINODE_GPU_EXTRA=")
		if code != 0 {
			t.Fatalf("node: exit %d\n%s", code, out)
		}
		if got := r.read("stub.log"); got != "nvidia-uvm\n" {
			t.Errorf("modprobe calls: got %q, want nvidia-uvm only", got)
		}
		out, code = r.run(kernel, "check", "BAINODE_GPU_MODULE=nvidia-drm")
		if code != 1 || !strings.Contains(out, "no nvidia-drm module") {
			t.Errorf("check of an absent module: exit %d\n%s", code, out)
		}
	})
}

// The reboot decision reaches bainoded as cloud-init's own events do: a
// webhook post to the endpoint the node's cloud-init config names, here a
// real bainoded server (builder/serve on an in-memory inventory), whose
// node status then shows it.
func TestGateReportsTheReboot(t *testing.T) {
	t.Parallel()
	kernel := baseKernel(t)
	newMods := needModules(t, kernel, other)
	store := inventory.NewMemory()
	srv := httptest.NewServer(serve.New(serve.Config{Store: store,
		Renderer: serve.RendererFunc(func([]byte, inventory.Node, serve.URLs) (serve.Files, error) { return serve.Files{}, nil })}))
	defer srv.Close()
	admin, err := inventory.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	store.PutAdminToken(t.Context(), inventory.HashToken(admin))
	call := func(method, path, body string) string {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return string(b)
	}
	call("PUT", "/api/v1/site", "site: gpu\n")
	var node struct{ Token string }
	if err := json.Unmarshal([]byte(call("PUT", "/api/v1/nodes/bai-g01", `{"macs":["52:54:00:aa:bb:01"],"role":"agent"}`)), &node); err != nil || node.Token == "" {
		t.Fatalf("node token: %v", err)
	}

	r := newRoot(t, kernel, other)
	r.install(other, newMods)
	// As bainoded's vendor-data puts it (builder/serve vendorData).
	write(t, filepath.Join(r.dir, "var/lib/cloud/instance/vendor-cloud-config.txt"),
		"#cloud-config\nreporting:\n  bainode:\n    type: webhook\n    endpoint: \""+srv.URL+"/report/bai-g01/"+node.Token+"\"\n", 0o600)
	out, code := r.run(kernel, "node")
	if code != 0 {
		t.Fatalf("node: exit %d\n%s", code, out)
	}
	if strings.Contains(out, node.Token) {
		t.Errorf("the webhook URL (it holds the node's token) was printed:\n%s", out)
	}
	evs, err := store.Events(t.Context(), "bai-g01", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("bainoded has %d events for the node, want 1: %+v\n%s", len(evs), evs, out)
	}
	ev := evs[0]
	if ev.Stage != "bainode/gpu-gate" || ev.Result != "warn" ||
		!strings.HasPrefix(ev.Detail, "rebooting to load the NVIDIA driver (kernel "+kernel+" -> "+other+")") {
		t.Errorf("event: %+v", ev)
	}
}

// baseKernel is the kernel the test base gets from the host's Debian
// archive: what linux-image-amd64 depends on. (The VM test uses the built
// base's own record instead.)
func baseKernel(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("apt-cache", "depends", "--no-recommends", "--no-suggests", "linux-image-amd64").Output()
	if err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			l = strings.TrimSpace(l)
			if k, ok := strings.CutPrefix(l, "Depends: linux-image-"); ok && strings.HasSuffix(k, "-amd64") {
				return k
			}
		}
	}
	if os.Getenv("CI") != "true" {
		t.Skipf("apt-cache knows no linux-image-amd64 (%v): no kernel to build for", err)
	}
	t.Fatalf("apt-cache depends linux-image-amd64: %v\n%s", err, out)
	return ""
}
