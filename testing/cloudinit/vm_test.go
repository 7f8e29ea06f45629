package cloudinit_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/seed"
	"github.com/lablup/bainode/builder/smoke"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/builder/verify"
	"github.com/lablup/bainode/testing/cloudinit"
	"github.com/lablup/bainode/testing/qemu"
)

// vmTrees are the trees booted in a VM: the oldest cloud-init bainode
// supports (20.04 GA) and the newest (24.04 today).
var vmTrees = []string{"focal-ga", "noble-latest"}

// The vm-test seed, rendered for the target that ships the tree, boots
// twice with the real verifier on the Debian test base whose cloud-init is
// the tree, laid out as Ubuntu's package lays it out (Tree.VMBase). Every
// check passes on both boots, `cloud-init status` says done with exit 0,
// and the console shows that the tree's version ran, not Debian's.
func TestVMBoots(t *testing.T) {
	trees := cloudinit.Trees(t)
	byTarget := targetTrees(t, trees)
	names := make([]string, 0, len(byTarget))
	for n := range byTarget {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range vmTrees {
		var tr *cloudinit.Tree
		target := ""
		for _, n := range names {
			if i := slices.IndexFunc(byTarget[n], func(x *cloudinit.Tree) bool { return x.Name == name }); i >= 0 {
				tr, target = byTarget[n][i], n
				break
			}
		}
		if tr == nil {
			t.Fatalf("no target ships the tree %s", name)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bootTree(t, tr, target)
		})
	}
}

func bootTree(t *testing.T, tr *cloudinit.Tree, target string) {
	base := qemu.Need(t)
	img, err := tr.VMBase(t.Context(), base, qemu.Log(t))
	if err != nil {
		t.Fatal(err)
	}
	accel, err := qemu.Accel(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Parse("vm-test@"+target+".yaml", example(t, "vm-test", target))
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(render.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.Node(s, &s.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	iso := filepath.Join(dir, "seed.iso")
	if err := seed.WriteISO(iso, f.FS()); err != nil {
		t.Fatal(err)
	}
	o := qemu.Smoke(t, img, "", accel)
	o.Seed, o.SeedFormat, o.Boots = iso, "iso", 2
	o.Timeout, o.MemoryMiB, o.CPUs = accel.Timeout(5*time.Minute), 1536, 2
	o.LogDir = filepath.Join(dir, "logs")
	res, err := smoke.Run(t.Context(), o)
	defer func() {
		if t.Failed() {
			for _, l := range res.Logs {
				b, _ := os.ReadFile(l)
				if len(b) > 8000 {
					b = b[len(b)-8000:]
				}
				t.Logf("serial log %s (end):\n%s", l, b)
			}
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Reports) != 2 {
		t.Fatalf("%d reports, want 2", len(res.Reports))
	}
	ran := regexp.MustCompile(`Cloud-init v\. (\S+) running '([a-z:-]+)'`)
	for i, rep := range res.Reports {
		for _, c := range rep.Checks {
			if c.Status == verify.StatusFail {
				t.Errorf("boot %d: %s failed: expected %q, got %q (%s)", i+1, c.ID, c.Expected, c.Actual, c.Detail)
			}
		}
		// status: done, not degraded, and exit 0 (the verifier checks both).
		if st := status(rep, "cloudinit.status"); st != verify.StatusPass {
			t.Errorf("boot %d: cloudinit.status is %q, want pass", i+1, st)
		}
		for _, id := range []string{"user.uid", "user.gid", "limits.effective.user", "hosts.block", "vfroot.root"} {
			if st := status(rep, id); st != verify.StatusPass {
				t.Errorf("boot %d: %s is %q, want pass", i+1, id, st)
			}
		}
		// The tree's cloud-init ran every stage, and nothing else did.
		log, err := os.ReadFile(res.Logs[i])
		if err != nil {
			t.Fatal(err)
		}
		stages := map[string]bool{}
		for _, m := range ran.FindAllSubmatch(log, -1) {
			if string(m[1]) != tr.Package {
				t.Errorf("boot %d: cloud-init %s ran %s; want %s", i+1, m[1], m[2], tr.Package)
			}
			stages[string(m[2])] = true
		}
		for _, st := range []string{"init-local", "init", "modules:config", "modules:final"} {
			if !stages[st] {
				t.Errorf("boot %d: no \"Cloud-init v. %s running '%s'\" on the console", i+1, tr.Package, st)
			}
		}
		// The layout boots clean: no unit failed (networking.service does
		// when ifupdown renders a network-config netplan should have).
		for _, l := range regexp.MustCompile(`Failed to start [^\r\n]*`).FindAll(log, -1) {
			t.Errorf("boot %d: %s", i+1, l)
		}
		t.Logf("boot %d: cloud-init %s, report after %s (%s)", i+1, tr.Package, res.Elapsed[i].Round(time.Second), accel)
	}
}

func status(r verify.Report, id string) string {
	for _, c := range r.Checks {
		if c.ID == id {
			return c.Status
		}
	}
	return "missing"
}
