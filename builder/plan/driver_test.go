package plan_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/plan"
	"github.com/lablup/bainode/builder/spec"

	"github.com/lablup/bainode/builder/internal/golden"
)

// gpuNode is a GPU agent of target, parsed and validated like a site file.
func gpuNode(t *testing.T, target string) *spec.Node {
	t.Helper()
	site := "version: 1\nname: gpu\ntarget: " + target + `
docker: {enabled: true}
gpu: {enabled: true, driver: "580", cuda: "13-0"}
nodes:
  - {hostname: bai-g01, role: agent}
`
	s, err := spec.Parse("site.yaml", []byte(site))
	if err != nil {
		t.Fatal(err)
	}
	return &s.Nodes[0]
}

// Each target's driver choice, as bainode plan shows it: reviewable in
// testdata/driver/<target>.json (go test -update rewrites them).
func TestDriverChoiceGolden(t *testing.T) {
	ts, err := plan.Targets()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range ts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			p, err := plan.For(gpuNode(t, name), plan.Options{})
			if err != nil {
				t.Fatal(err)
			}
			st := p.Step("gpu-driver")
			if st == nil || st.Driver == nil {
				t.Fatalf("no gpu-driver step with a driver choice: %+v", p.Steps)
			}
			got, err := json.MarshalIndent(st, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden.Check(t, filepath.Join("testdata", "driver", name+".json"), got)
		})
	}
}

// The rules the choice must keep, whatever the data says.
func TestDriverChoiceRules(t *testing.T) {
	ts, err := plan.Targets()
	if err != nil {
		t.Fatal(err)
	}
	for name, tg := range ts {
		p := plan.ForTarget(gpuNode(t, name), tg, plan.Options{})
		d := p.Step("gpu-driver").Driver
		all := append(append(append([]string{}, p.Step("gpu-driver").Packages...), d.Precompiled...), d.DKMS...)
		for _, pkg := range all {
			if strings.Contains(pkg, "{branch}") || strings.Contains(pkg, "{cuda}") {
				t.Errorf("%s: %q is not filled", name, pkg)
			}
		}
		// The module is for the running kernel: every module package names
		// it, and DKMS gets that kernel's headers, not a meta package that
		// tracks the newest kernel.
		for _, pkg := range d.Precompiled {
			if !strings.Contains(pkg, plan.KernelWord) {
				t.Errorf("%s: precompiled %q is not for the running kernel (%s)", name, pkg, plan.KernelWord)
			}
		}
		if !slices.ContainsFunc(d.DKMS, func(s string) bool { return strings.Contains(s, plan.KernelWord) }) {
			t.Errorf("%s: dkms %v has no headers for the running kernel", name, d.DKMS)
		}
		if !d.NoRecommends || d.KernelHold == "" {
			t.Errorf("%s: want no recommends and a kernel hold, got %+v", name, d)
		}
		if tg.Family == "ubuntu" && len(d.Precompiled) == 0 {
			t.Errorf("%s: Ubuntu ships precompiled signed modules; prefer them", name)
		}
		// The user space must not drag DKMS in beside a precompiled module.
		for _, pkg := range p.Step("gpu-driver").Packages {
			if len(d.Precompiled) > 0 && slices.Contains(d.DKMS, pkg) {
				t.Errorf("%s: user space %q is a DKMS package", name, pkg)
			}
		}
	}
}

// A bad kernel_hold or a missing DKMS fallback is refused with the target's name.
func TestLoadTargetsDriverErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"x:\n  cloud_init: [\"1\"]\n  nvidia_driver: [a]\n", "x: nvidia_dkms"},
		{"x:\n  cloud_init: [\"1\"]\n  nvidia_driver: [a]\n  nvidia_dkms: [b]\n  kernel_hold: \"(\"\n", "x: kernel_hold"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "targets.yaml"), []byte(c.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := plan.LoadTargets(os.DirFS(dir))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadTargets(%q) = %v, want an error naming %q", c.yaml, err, c.want)
		}
	}
}
