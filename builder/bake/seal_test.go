package bake

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/templates"
	"github.com/lablup/bainode/testing/cloudinit"
)

// sealHook runs the cloud-init part of the seal as installed by the bake
// seed: the status wait, then seal_cloud_init (clean and machine-id). The
// rest of main needs systemd as PID 1 (poweroff, journalctl, unmasking the
// held units), which the sandbox has not; the VM bakes cover it.
const sealHook = `#!/usr/bin/python3
import hashlib, importlib.machinery, importlib.util, json
path = "/usr/local/sbin/bainode-seal"
loader = importlib.machinery.SourceFileLoader("bainode_seal", path)
seal = importlib.util.module_from_spec(importlib.util.spec_from_loader("bainode_seal", loader))
loader.exec_module(seal)
seal.cloud_init_status()
if seal.report["cloud_init_status"] == "done":
    seal.seal_cloud_init()
seal.report["script_sha256"] = hashlib.sha256(open(path, "rb").read()).hexdigest()
print(json.dumps(seal.report))
`

// sealGone is cloud-init's state and logs, which must be there after the
// stages and gone after the seal.
var sealGone = []string{"/var/lib/cloud/instance", "/var/lib/cloud/instances", "/var/lib/cloud/seed",
	"/var/lib/cloud/data", "/var/lib/cloud/sem", "/var/log/cloud-init.log", "/var/log/cloud-init-output.log"}

// TestSealCloudInit runs the bake seed of the vm-test node through the four
// stages of every cloud-init tree in the sandbox of testing/cloudinit, then
// the seal's cloud-init part (see sealHook), and checks the sealed state:
// state, seed and logs gone, /etc/machine-id kept and reset the way the
// host's systemd wants it, and what the seal reported.
func TestSealCloudInit(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the stages sandbox needs root (unshare, mount)")
		}
		t.Skip("the stages sandbox needs root (unshare, mount)")
	}
	trees := cloudinit.Trees(t)
	targets, err := render.LoadTargets(templates.FS)
	if err != nil {
		t.Fatal(err)
	}
	// Each tree once, with the first target (by name) that ships it.
	names := make([]string, 0, len(targets))
	for n := range targets {
		names = append(names, n)
	}
	sort.Strings(names)
	target := map[*cloudinit.Tree]string{}
	for _, n := range names {
		for _, v := range targets[n].CloudInit {
			if tr := cloudinit.Lookup(trees, v); tr != nil && target[tr] == "" {
				target[tr] = n
			}
		}
	}
	if len(target) == 0 {
		t.Fatal("no target ships any of the trees")
	}
	wantID := machineIDWant(t)
	sum := sha256.Sum256([]byte(sealScript))
	for tr, tg := range target {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			seed := bakeSeedDir(t, tg)
			paths := append([]string{"/etc/machine-id", "/usr/local/sbin/bainode-seal"}, sealGone...)
			r, err := tr.StagesHook(t.Context(), t.TempDir(), seed, paths, []byte(sealHook))
			if err != nil {
				t.Fatal(err)
			}
			logs := "--- stages\n" + r.Log + "\n--- status\n" + r.Status + "\n--- seal\n" + r.HookOut + r.HookErr
			for _, p := range sealGone {
				if r.Stat[p].Missing {
					t.Errorf("%s missing after the stages: nothing to clean\n%s", p, logs)
				}
				if !r.After[p].Missing {
					t.Errorf("%s survived the seal\n%s", p, logs)
				}
			}
			if s := r.After["/etc/machine-id"]; s.Missing || s.Type != "regular file" {
				t.Errorf("/etc/machine-id after the seal: %+v; want a regular file (systemd needs it)", s)
			}
			id, _ := os.ReadFile(filepath.Join(r.Dir, "after", "etc", "machine-id"))
			if string(id) != wantID {
				t.Errorf("/etc/machine-id after the seal: %q; want %q", id, wantID)
			}
			if r.HookExit != 0 {
				t.Fatalf("seal exit %d\n%s", r.HookExit, logs)
			}
			lines := strings.Split(strings.TrimSpace(r.HookOut), "\n")
			var rep struct {
				Status        string   `json:"cloud_init_status"`
				Version       string   `json:"cloud_init_version"`
				Clean         string   `json:"clean_command"`
				MachineID     string   `json:"machine_id"`
				Actions       []string `json:"actions"`
				Errors        []string `json:"errors"`
				ScriptSHA256  string   `json:"script_sha256"`
				SystemdString string   `json:"systemd_version"`
			}
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
				t.Fatalf("seal report: %v\n%s", err, logs)
			}
			if rep.ScriptSHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("the seed installed another bainode-seal than the bake embeds")
			}
			if rep.Status != "done" || rep.Version != tr.Version || len(rep.Errors) > 0 {
				t.Errorf("seal report: status %q, version %q (want done, %s), errors %q\n%s", rep.Status, rep.Version, tr.Version, rep.Errors, logs)
			}
			for _, a := range []string{"cloud-init state", "cloud-init clean", "machine-id"} {
				if !slices.Contains(rep.Actions, a) {
					t.Errorf("seal report: no action %q in %q", a, rep.Actions)
				}
			}
			want := "cloud-init clean --logs --seed"
			if cleanHasConfigs(t, tr) {
				want += " --configs all"
			}
			if rep.Clean != want {
				t.Errorf("clean command %q; want %q (from the tree's clean.py)", rep.Clean, want)
			}
			if w := map[bool]string{true: "uninitialized", false: "empty"}[wantID != ""]; rep.MachineID != w {
				t.Errorf("seal reports machine_id %q; want %q", rep.MachineID, w)
			}
		})
	}
}

// bakeSeedDir writes the bake seed of the vm-test node, retargeted.
func bakeSeedDir(t *testing.T, target string) string {
	b, err := templates.FS.ReadFile("examples/vm-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "\ntarget: debian-12\n", "\ntarget: "+target+"\n", 1)
	site, err := spec.Parse("vm-test@"+target+".yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	f, err := ImageSeed(renderSeed(t, site, &site.Nodes[0]), "seal-test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range f.Map() {
		if data != nil {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// machineIDWant is what the seal must leave in /etc/machine-id for the
// sandbox's systemd (the host's): "uninitialized" from 247 on (first-boot
// semantics), empty before.
func machineIDWant(t *testing.T) string {
	out, err := exec.Command("systemctl", "--version").Output()
	if err != nil {
		t.Fatalf("systemctl --version: %v", err)
	}
	m := regexp.MustCompile(`systemd (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemctl --version: %q", out)
	}
	if v, _ := strconv.Atoi(string(m[1])); v >= 247 {
		return "uninitialized\n"
	}
	return ""
}

// cleanHasConfigs says the tree's `cloud-init clean` takes --configs.
func cleanHasConfigs(t *testing.T, tr *cloudinit.Tree) bool {
	dir := tr.Dir
	if dir == "" { // Debian's package
		dir = "/usr/lib/python3/dist-packages"
	}
	b, err := os.ReadFile(filepath.Join(dir, "cloudinit", "cmd", "clean.py"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), `"--configs"`)
}
