package render

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/fetch"
	"github.com/lablup/bainode/builder/plan"
	"github.com/lablup/bainode/overlays"
	"github.com/lablup/bainode/templates"
)

// The scripts on the node get every package name, URL, marker and key
// fingerprint from the env files render writes; a copy in a script drifts.
func TestScriptsHoldNoPlanLiterals(t *testing.T) {
	var facts []string
	for _, p := range plan.PackageNames() {
		if !slices.Contains(facts, p) {
			facts = append(facts, p)
		}
	}
	facts = append(facts, fetch.DockerFingerprint, fetch.NVIDIAFingerprint, plan.CUDAFingerprint,
		plan.NVIDIAToolkitRepo, plan.UbuntuCloudImages, HostsBegin, HostsEnd)
	scripts := []string{"provision/bainode-provision", "provision/bainode-gpu-gate", "verify/bainode-verify", "verify/bainode-verify-report"}
	for _, name := range scripts {
		b, err := fs.ReadFile(overlays.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, f := range facts {
				// A package name counts as a word of its own: not part of a
				// file name (nvidia-container-toolkit.asc) or a registry
				// host (docker.io/).
				re := regexp.MustCompile(`(^|[^A-Za-z0-9._-])` + regexp.QuoteMeta(f) + `($|[^A-Za-z0-9_./-]|\.($|\s))`)
				if re.MatchString(line) {
					t.Errorf("overlays/%s:%d holds %q, which Go owns (plan or render): read it from the env file", name, i+1, f)
				}
			}
		}
	}
}

// The verifier's KEYS list is exactly the keys verify.env.tmpl writes.
func TestVerifierKeysMatchRender(t *testing.T) {
	script, err := fs.ReadFile(overlays.FS, "verify/bainode-verify")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)\nKEYS=\(([^)]*)\)`).FindSubmatch(script)
	if m == nil {
		t.Fatal("bainode-verify has no KEYS=(...) list")
	}
	keys := strings.Fields(string(m[1]))
	tmpl, err := fs.ReadFile(templates.FS, "cloud-init/verify.env.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	var written []string
	for _, l := range strings.Split(string(tmpl), "\n") {
		if k, _, ok := strings.Cut(l, "="); ok && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`).MatchString(k) {
			written = append(written, k)
		}
	}
	slices.Sort(keys)
	slices.Sort(written)
	if !slices.Equal(keys, written) {
		t.Errorf("bainode-verify KEYS %v\n    != verify.env.tmpl keys %v", keys, written)
	}
}

// The driver choice plan makes reaches bainode-provision through
// provision.env: every key is written by the template and read by the
// script, and the kernel placeholder is plan's.
func TestDriverChoiceReachesProvision(t *testing.T) {
	script, err := fs.ReadFile(overlays.FS, "provision/bainode-provision")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := fs.ReadFile(templates.FS, "cloud-init/provision.env.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"NVIDIA_DRIVER_PACKAGES", "NVIDIA_PRECOMPILED_PACKAGES", "NVIDIA_DKMS_PACKAGES",
		"NVIDIA_NO_RECOMMENDS", "KERNEL_HOLD", "KERNEL_WORD"} {
		if !strings.Contains(string(tmpl), "\n"+k+"=") {
			t.Errorf("provision.env.tmpl does not write %s", k)
		}
		if !regexp.MustCompile(`\$\{?` + k + `\b`).Match(script) {
			t.Errorf("bainode-provision does not read %s", k)
		}
	}
	if strings.Contains(string(script), plan.KernelWord) {
		t.Errorf("bainode-provision spells %s itself; it must come from KERNEL_WORD", plan.KernelWord)
	}
	if !strings.Contains(string(tmpl), "KERNEL_WORD={{sh .KernelWord}}") {
		t.Error("provision.env.tmpl: KERNEL_WORD is not plan.KernelWord")
	}
}
