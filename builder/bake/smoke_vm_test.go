package bake

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/payload"
	"github.com/lablup/bainode/builder/seed"
	"github.com/lablup/bainode/builder/smoke"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/builder/verify"
	"github.com/lablup/bainode/testing/payloadfix"
	"github.com/lablup/bainode/testing/qemu"
)

// bakedSite is the site of the shared bake: testSite's, with Docker (no
// compose: Debian 12 has no compose plugin package), the Python with the
// agent's venv and the test image, all from a payload.
func bakedSite(t testing.TB) (*spec.Site, *spec.Node) {
	t.Helper()
	site, n := parseSite(t, "vm-test+bake+payload.yaml", payloadfix.SiteYAML(t, testSiteYAML(t, "4096"), baked.fix.PyVersion))
	if n.Artifacts != spec.ArtifactsPayload || !n.Docker.Enabled || !n.Python.Enabled || len(n.Images.Pull) != 1 {
		t.Fatalf("baked site: %+v", n.Settings)
	}
	return site, n
}

// bakePayload builds the payload disk for node into dir, from the shared
// fixture's inputs, as `bainode payload` does.
func bakePayload(t testing.TB, dir string, n *spec.Node) (string, error) {
	t.Helper()
	cache := baked.fix.Cache(t, payload.ImageArchiveName(payloadfix.TestImage), payload.PythonAsset(n.Python))
	items, err := payload.ForNodes([]*spec.Node{n}, payload.Sources{Cache: cache, DebDirs: []string{baked.fix.DebDir}})
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "payload.img")
	return p, payload.Build(context.Background(), p, cache, items, payload.Options{})
}

// nodeSeedISO writes the thin node seed for the shared bake (the node
// part of bakedSite's plan, checked against the bake's manifest) as an ISO
// in dir.
func nodeSeedISO(t testing.TB, dir string) string {
	t.Helper()
	site, n := bakedSite(t)
	full := renderSeed(t, site, n)
	if err := CheckPlan(baked.res.Manifest, full); err != nil {
		t.Fatal(err)
	}
	files, err := NodeSeed(full)
	if err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(dir, "seed.iso")
	if err := seed.WriteISO(iso, files.FS()); err != nil {
		t.Fatal(err)
	}
	return iso
}

// TestBakeSmoke runs what `bainode smoke --image baked.qcow2 --seed
// <thin node seed> --boots 2` runs, with no network device and no payload:
// both boots must pass every check strictly (docker, python, the image;
// compose is a skip, as the payload cannot carry it on Debian 12), and the
// first boot's provisioning must be the node phase only, installing
// nothing.
func TestBakeSmoke(t *testing.T) {
	t.Parallel()
	needBake(t)
	dir := t.TempDir()
	o := qemu.Smoke(t, baked.img, baked.output, baked.accel)
	o.Seed, o.SeedFormat, o.Boots, o.NoNetwork = nodeSeedISO(t, dir), "iso", 2, true
	o.Timeout, o.MemoryMiB, o.CPUs = baked.accel.Timeout(12*time.Minute), 1024, 1
	o.LogDir = filepath.Join(dir, "logs")
	res, err := smoke.Run(t.Context(), o)
	var serial string
	if len(res.Logs) > 0 {
		b, _ := os.ReadFile(res.Logs[0])
		serial = strings.ReplaceAll(string(b), "\r", "")
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("boot 1 console, last lines:\n%s", consoleTail(serial, 80))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Reports) != 2 {
		t.Fatalf("%d reports, want 2", len(res.Reports))
	}
	for i, rep := range res.Reports {
		for _, c := range rep.Checks {
			if c.Status == verify.StatusFail {
				t.Errorf("boot %d: %s failed: expected %q, got %q (%s)", i+1, c.ID, c.Expected, c.Actual, c.Detail)
			}
		}
		for _, id := range []string{
			"cloudinit.status", "docker.active", "docker.user_access", "user.member.docker",
			"python.version", "python.modules", "python.venv.agent", "image." + payloadfix.TestImage,
		} {
			if st := checkStatus(rep, id); st != verify.StatusPass {
				t.Errorf("boot %d: %s is %q, want pass", i+1, id, st)
			}
		}
		if st := checkStatus(rep, "docker.compose"); st != verify.StatusSkip {
			t.Errorf("boot %d: docker.compose is %q, want skip (compose: false)", i+1, st)
		}
		t.Logf("boot %d: %d pass, %d skip, %d fail, report after %s", i+1, rep.Summary.Pass, rep.Summary.Skip, rep.Summary.Fail, res.Elapsed[i].Round(time.Second))
	}
	// Nothing installed at first boot: the node phase's steps only, no
	// payload looked for, dpkg unpacked nothing.
	if !strings.Contains(serial, "phase node: report hosts storage verify\n") {
		t.Errorf("boot 1: provisioning did not run the node phase (report hosts storage verify) only")
	}
	// The same patterns find the bake's installs on its console: they
	// would see an install at first boot.
	bake := strings.ReplaceAll(baked.console.String(), "\r", "")
	for _, re := range []*regexp.Regexp{installStep, dpkgInstall} {
		if re.FindString(bake) == "" {
			t.Errorf("the bake's console has no match of %s: the check below would prove nothing", re)
		}
		if m := re.FindString(serial); m != "" {
			t.Errorf("boot 1 installed something: %q", m)
		}
	}
	if m := regexp.MustCompile(`bainode-provision\[[a-z]+\]: (ERROR|step failed|FAILED)`).FindString(serial); m != "" {
		t.Errorf("boot 1: %q", m)
	}
}

// What an install at boot leaves on the console: a provisioning step that
// installs, and dpkg unpacking or setting up a package.
var (
	installStep = regexp.MustCompile(`bainode-provision\[(payload|docker|python|images|gpu|unmount)\]`)
	dpkgInstall = regexp.MustCompile(`(?m)(^|cloud-init\[\d+\]: )(Unpacking|Setting up) \S+ \(`)
)

func checkStatus(r verify.Report, id string) string {
	for _, c := range r.Checks {
		if c.ID == id {
			return c.Status
		}
	}
	return "missing"
}
