package payload

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/internal/testsrv"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/seed"
	"github.com/lablup/bainode/builder/smoke"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/builder/verify"
	"github.com/lablup/bainode/builder/vm"
	"github.com/lablup/bainode/templates"
	"github.com/lablup/bainode/testing/payloadfix"
	"github.com/lablup/bainode/testing/qemu"
)

// The test image and what its one command prints.
const (
	testImage     = payloadfix.TestImage
	testGreeting  = payloadfix.Greeting
	testPyRelease = payloadfix.PyRelease
)

// TestAirGappedVM boots the Debian 12 test base with NO network device at
// all, the vm-test example turned to "artifacts: payload" with Docker,
// the static Python (one venv) and one image, and a payload disk built by
// Build from testing/payloadfix's inputs: Debian 12's docker.io and the
// dependencies the base lacks, a docker-load tarball of a busybox image,
// and a stand-in Python in python-build-standalone's layout.
//
// It passes when the verifier passes the docker, python and image checks
// (and fails nothing), the provisioning log shows every file checked and
// the image loaded from the payload, and `docker run` of the loaded image
// printed its greeting on the serial console.
func TestAirGappedVM(t *testing.T) {
	img := qemu.Need(t)
	accel, err := qemu.Accel(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	needTool(t, "debugfs", "e2fsprogs")
	work := t.TempDir()
	// --- what the base lacks for docker.io, the image and the Python
	// (built once, cached: see testing/payloadfix).
	fx := payloadfix.Need(t)
	t.Logf("carrying %d .debs: %s; guest python %s", len(fx.Debs), strings.Join(fx.Debs, " "), fx.PyVersion)

	// --- the site: vm-test with Docker, Python and the image on, offline.
	site, node := payloadSite(t, fx.PyVersion)
	cache := fx.Cache(t, ImageArchiveName(testImage), PythonAsset(node.Python))
	items, err := ForNodes([]*spec.Node{node}, Sources{Cache: cache, DebDirs: []string{fx.DebDir}})
	if err != nil {
		t.Fatal(err)
	}
	payloadImg := filepath.Join(work, "payload.img")
	start := time.Now()
	if err := Build(t.Context(), payloadImg, cache, items, Options{Progress: qemu.Log(t)}); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(payloadImg)
	t.Logf("payload: %d items, %.1f MiB, built in %s", len(items), float64(fi.Size())/(1<<20), time.Since(start).Round(time.Millisecond))
	e2fsckClean(t, payloadImg)
	m := readManifestBytes(t, debugfsCat(t, payloadImg, "/manifest.json"))

	// --- the seed. The only addition to what bainode renders: after
	// provisioning, runcmd runs the loaded image once and prints what it
	// says on the serial console; provisioning's status stays runcmd's.
	files := renderNode(t, site, node)
	ud := string(files.UserData)
	const provision = "  - [/usr/local/sbin/bainode-provision]\n"
	if !strings.Contains(ud, provision) || !strings.Contains(ud, "ARTIFACTS='payload'") {
		t.Fatalf("rendered user-data has no %q or no ARTIFACTS='payload'", provision)
	}
	ud = strings.Replace(ud, provision, fmt.Sprintf(`  - [sh, -c, "/usr/local/sbin/bainode-provision; rc=$?; docker run --rm --network none %s >/dev/ttyS0 2>&1 || echo docker run failed >/dev/ttyS0; exit $rc"]`+"\n", testImage), 1)
	files.UserData = []byte(ud)

	// --- the boot: no network device, the payload as a read-only disk.
	res, serial := bootOffline(t, img, accel, work, files, payloadImg, 8*time.Minute, 2048)
	t.Logf("report after %s (%s)", res.Elapsed[0].Round(time.Second), accel)
	rep := res.Reports[0]

	for _, c := range rep.Checks {
		if c.Status == verify.StatusFail {
			t.Errorf("%s failed: expected %q, got %q (%s)", c.ID, c.Expected, c.Actual, c.Detail)
		}
	}
	for _, id := range []string{
		"cloudinit.status", "docker.active", "docker.user_access", "user.member.docker",
		"python.version", "python.modules", "python.venv.agent", "image." + testImage,
	} {
		if st := status(rep, id); st != verify.StatusPass {
			t.Errorf("%s is %q, want pass", id, st)
		}
	}

	// The provisioning log: every file checked, the payload's apt and
	// image used, the payload unmounted, no step failed.
	for _, want := range []string{
		fmt.Sprintf("bainode-provision[payload]: all %d files match manifest.json", len(m.Files)),
		"bainode-provision[docker]: installing the payload's docker.io",
		"bainode-provision[python]: offline: agent's venv keeps the pip its Python bundles",
		"bainode-provision[images]: " + testImage + " loaded from the payload",
		"bainode-provision[unmount]: unmounted /run/bainode/payload",
		"bainode-provision[done]: finished",
	} {
		if !strings.Contains(serial, want) {
			t.Errorf("serial log has no %q", want)
		}
	}
	if regexp.MustCompile(`bainode-provision\[[a-z]+\]: (ERROR|step failed)`).MatchString(serial) {
		t.Errorf("a provisioning step failed")
	}
	// The container ran: its command's output reached the console. The
	// text is only in the image's config on the payload, not in the seed.
	if !strings.Contains(serial, testGreeting) {
		var lines []string
		for _, l := range strings.Split(serial, "\n") {
			if strings.Contains(l, "docker") || strings.Contains(l, "hello") {
				lines = append(lines, l)
			}
		}
		t.Errorf("no %q from docker run on the serial console; lines about docker:\n%s", testGreeting, strings.Join(lines, "\n"))
	}
	if strings.Contains(ud, testGreeting) {
		t.Fatal("the greeting is in the seed: the check above would prove nothing")
	}
	// The evidence, for -v.
	for _, l := range strings.Split(serial, "\n") {
		if strings.Contains(l, "bainode-provision[payload]") || strings.Contains(l, "bainode-provision[images]") ||
			strings.Contains(l, "bainode-provision[docker]: installing") || strings.Contains(l, testGreeting) ||
			strings.Contains(l, "bainode-verify: pass=") {
			t.Log(strings.TrimRight(l, "\r"))
		}
	}
}

// payloadSite is the vm-test example with Docker, the Python and one
// venv, and the test image, all from the payload (payloadfix.SiteYAML).
func payloadSite(t *testing.T, pyVersion string) (*spec.Site, *spec.Node) {
	t.Helper()
	y := payloadfix.SiteYAML(t, mustRead(t, "examples/vm-test.yaml"), pyVersion)
	site, err := spec.Parse("vm-test+payload.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	n := &site.Nodes[0]
	if n.Artifacts != spec.ArtifactsPayload || !n.Docker.Enabled || n.Docker.Compose || !n.Python.Enabled {
		t.Fatalf("site: %+v", n.Settings)
	}
	return site, n
}

func status(r verify.Report, id string) string {
	for _, c := range r.Checks {
		if c.ID == id {
			return c.Status
		}
	}
	return "missing"
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestAirGappedVMCorruptPayload boots with a payload whose Python tarball
// lost a byte after it was built: the payload step must fail naming that
// file, the Python step must refuse to install from an unverified payload,
// and provisioning must fail (so cloud-init reports an error).
func TestAirGappedVMCorruptPayload(t *testing.T) {
	img := qemu.Need(t)
	accel, err := qemu.Accel(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	y := strings.Replace(mustRead(t, "examples/vm-test.yaml"), "python:\n  enabled: false\n",
		"artifacts: payload\npython:\n  enabled: true\n  version: 3.11.2\n  release: \""+testPyRelease+"\"\n  services: [agent]\n", 1)
	site, err := spec.Parse("vm-test+corrupt.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	node := &site.Nodes[0]
	asset := PythonAsset(node.Python)
	py := filepath.Join(work, asset)
	if err := os.WriteFile(py, testsrv.RandomBytes(7, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	payloadImg := filepath.Join(work, "payload.img")
	if err := Build(t.Context(), payloadImg, nil, []Item{{Kind: KindPython, Path: py}}, Options{}); err != nil {
		t.Fatal(err)
	}
	// Flip one byte of the tarball's second block, in place.
	// debugfs prints its banner first (on stderr), the block number last.
	blk := strings.Fields(run(t, "debugfs", "-R", "bmap /python/"+asset+" 1", payloadImg))
	var n int64
	if _, err := fmt.Sscan(blk[len(blk)-1], &n); err != nil || n == 0 {
		t.Fatalf("debugfs bmap: %q", blk)
	}
	f, err := os.OpenFile(payloadImg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	f.ReadAt(b, n*blockSize+17)
	b[0] ^= 0x40
	f.WriteAt(b, n*blockSize+17)
	f.Close()

	files := renderNode(t, site, node)
	res, serial := bootOffline(t, img, accel, work, files, payloadImg, 4*time.Minute, 1536)
	for _, want := range []string{
		"bainode-provision[payload]: ERROR: payload files do not match /run/bainode/payload/manifest.json: python/" + asset + ": FAILED",
		"bainode-provision[python]: ERROR: the payload (label BAIPAYLOAD) is not mounted and verified",
		"bainode-provision[done]: FAILED steps: payload python",
	} {
		if !strings.Contains(serial, want) {
			t.Errorf("serial log has no %q", want)
		}
	}
	if st := status(res.Reports[0], "python.version"); st != verify.StatusFail {
		t.Errorf("python.version is %q, want fail: nothing may be installed from a corrupt payload", st)
	}
}

// renderNode renders the node's seed files as bainode does.
func renderNode(t *testing.T, site *spec.Site, node *spec.Node) render.Files {
	t.Helper()
	r, err := render.New(render.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	files, err := r.Node(site, node)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// bootOffline boots img with files as an ISO seed, no network device and
// the payload as a read-only disk, and returns the result and the serial
// log. When the test fails, the log is kept and its tail shown.
func bootOffline(t *testing.T, img qemu.Image, accel vm.Accel, work string, files render.Files, payloadImg string, timeout time.Duration, memMiB int) (smoke.Result, string) {
	t.Helper()
	seedISO := filepath.Join(work, "seed.iso")
	if err := seed.WriteISO(seedISO, files.FS()); err != nil {
		t.Fatal(err)
	}
	o := qemu.Smoke(t, img, "", accel)
	o.Seed, o.SeedFormat, o.NoNetwork = seedISO, "iso", true
	o.Drives = []vm.Drive{{Path: payloadImg, Format: vm.FormatRaw, Media: vm.MediaDisk, ReadOnly: true}}
	o.Timeout, o.MemoryMiB, o.CPUs = accel.Timeout(timeout), memMiB, 2
	o.LogDir = filepath.Join(work, "logs")
	res, err := smoke.Run(t.Context(), o)
	var serial string
	if len(res.Logs) > 0 {
		b, _ := os.ReadFile(res.Logs[0])
		serial = string(b)
	}
	// A cleanup, not a defer: it must see failures after this returns.
	t.Cleanup(func() {
		if t.Failed() {
			keepSerial(t, serial)
			t.Logf("serial log (last 12000 bytes):\n%s", tailString(serial, 12000))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return res, serial
}

// keepSerial saves a failed boot's whole serial log where it outlives the test.
func keepSerial(t *testing.T, serial string) {
	dir := filepath.Join(os.TempDir(), "bainode-vm-logs")
	p := filepath.Join(dir, fmt.Sprintf("%s-%s.log", t.Name(), time.Now().Format("20060102-150405")))
	if os.MkdirAll(dir, 0o755) == nil && os.WriteFile(p, []byte(serial), 0o644) == nil {
		t.Logf("serial log kept at %s", p)
	}
}

func mustRead(t *testing.T, name string) string {
	t.Helper()
	b, err := templates.FS.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
