package payload

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/fetch"
	"github.com/lablup/bainode/builder/internal/testsrv"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/seed"
	"github.com/lablup/bainode/builder/smoke"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/builder/verify"
	"github.com/lablup/bainode/builder/vm"
	"github.com/lablup/bainode/templates"
	"github.com/lablup/bainode/testing/qemu"
)

// The test image and what its one command prints.
const (
	testImage    = "bainode-test/hello:1"
	testGreeting = "hello from bainode"
	// A made-up python-build-standalone release tag for the stand-in below.
	testPyRelease = "20000101"
)

// TestAirGappedVM boots the Debian 12 test base with NO network device at
// all, the vm-test example turned to "artifacts: payload" with Docker,
// the static Python (one venv) and one image, and a payload disk built by
// Build from:
//   - Debian 12's docker.io and the dependencies the base lacks, fetched on
//     the host with apt-get download (the guest has no way to fetch them);
//   - a docker-load tarball made here: one layer with Debian's static
//     busybox, the greeting as its command;
//   - a Python tarball in python-build-standalone's layout (see
//     pythonStandIn: it is a stand-in, not a real build).
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
	for tool, pkg := range map[string]string{"apt-get": "apt", "apt-cache": "apt", "dpkg-deb": "dpkg"} {
		needTool(t, tool, pkg)
	}
	work := t.TempDir()

	// --- what the base lacks for docker.io, from the host's apt sources.
	base, pyVersion := basePackages(t)
	debs := dockerDebs(t, base)
	debDir := filepath.Join(work, "debs")
	aptDownload(t, debDir, debs...)
	tools := filepath.Join(work, "tools")
	aptDownload(t, tools, "busybox-static", "python3-pip-whl")
	t.Logf("carrying %d .debs: %s; guest python %s", len(debs), strings.Join(debs, " "), pyVersion)

	// --- the image and the Python, imported into a cache under the names
	// 'bainode payload' looks for.
	cache, err := fetch.OpenCache(filepath.Join(work, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	imgTar := filepath.Join(work, "hello.tar")
	busybox, err := os.ReadFile(filepath.Join(unpackDeb(t, glob1(t, tools, "busybox-static_*.deb")), "bin/busybox"))
	if err != nil {
		t.Fatal(err)
	}
	writeDockerArchive(t, imgTar, "docker.io/"+testImage, // tagged as docker save writes it; found by its key
		[]string{"/bin/busybox", "echo", testGreeting},
		map[string][]byte{"bin/busybox": busybox, "bin/sh": []byte("->busybox")}, map[string]int64{"bin/busybox": 0o755})
	if _, err := cache.Import(imgTar, fetch.Artifact{Name: ImageArchiveName(testImage), URL: "file:///test/hello.tar", Kind: "image"}); err != nil {
		t.Fatal(err)
	}
	pipWheel := glob1(t, filepath.Join(unpackDeb(t, glob1(t, tools, "python3-pip-whl_*.deb")), "usr/share/python-wheels"), "pip-*.whl")
	pyTar := filepath.Join(work, "python.tar.gz")
	pythonStandIn(t, pyTar, pyVersion, pipWheel)

	// --- the site: vm-test with Docker, Python and the image on, offline.
	site, node := payloadSite(t, pyVersion)
	if _, err := cache.Import(pyTar, fetch.Artifact{Name: PythonAsset(node.Python), URL: "file:///test/python.tar.gz", Kind: "python"}); err != nil {
		t.Fatal(err)
	}
	items, err := ForNodes([]*spec.Node{node}, Sources{Cache: cache, DebDirs: []string{debDir}})
	if err != nil {
		t.Fatal(err)
	}
	payloadImg := filepath.Join(work, "payload.img")
	start := time.Now()
	if err := Build(t.Context(), payloadImg, cache, items, Options{Progress: &tlog{t}}); err != nil {
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

// basePackages lists what the test base has installed, by simulating its
// build on the host: apt resolves minbase (Essential and Priority: required,
// plus apt) and testing/qemu/packages.txt against an empty dpkg status,
// without recommends, as mmdebstrap --variant=minbase does. It also returns
// the base's Python version.
func basePackages(t *testing.T) (map[string]bool, string) {
	t.Helper()
	b, err := os.ReadFile("../../testing/qemu/packages.txt")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.TrimSpace(line); line != "" {
			want = append(want, line)
		}
	}
	avail, err := exec.Command("apt-cache", "dumpavail").Output()
	if err != nil {
		t.Fatalf("apt-cache dumpavail: %v", err)
	}
	pkg := ""
	sc := bufio.NewScanner(bytes.NewReader(avail))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "Package: "):
			pkg = strings.TrimPrefix(l, "Package: ")
		case l == "Priority: required" || l == "Essential: yes":
			if !slices.Contains(want, pkg) {
				want = append(want, pkg)
			}
		}
	}
	want = append(want, "apt")
	status := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(status, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-s", "-o", "Dir::State::status=" + status, "-o", "APT::Install-Recommends=false", "install"}, want...)
	out, err := exec.Command("apt-get", args...).CombinedOutput()
	if err != nil {
		hostLacks(t, fmt.Sprintf("apt-get -s install (the base's packages): %v\n%s", err, tailString(string(out), 2000)))
	}
	base := map[string]bool{}
	pyVersion := ""
	re := regexp.MustCompile(`^Inst (\S+) \((\S+) `)
	for _, l := range strings.Split(string(out), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			base[m[1]] = true
			if m[1] == "python3.11" || (pyVersion == "" && strings.HasPrefix(m[1], "python3.") && !strings.Contains(m[1], "-")) {
				v := m[2]
				if i := strings.Index(v, "-"); i > 0 {
					v = v[:i]
				}
				pyVersion = v
			}
		}
	}
	if len(base) < 100 || pyVersion == "" {
		t.Fatalf("simulated base has %d packages and python %q:\n%s", len(base), pyVersion, tailString(string(out), 2000))
	}
	return base, pyVersion
}

// dockerDebs lists docker.io, apparmor and everything they may depend on
// (apt-cache depends --recurse lists every alternative) that the base
// lacks. Extra alternatives cost only space: apt in the guest picks.
// apparmor is docker.io's Recommends that matters: Debian's kernel has
// AppArmor on, and without apparmor_parser dockerd cannot load its
// docker-default profile, so every `docker run` fails. Debian's cloud
// images have apparmor; the test base does not.
func dockerDebs(t *testing.T, base map[string]bool) []string {
	t.Helper()
	out, err := exec.Command("apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
		"--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", "docker.io", "apparmor").Output()
	if err != nil {
		hostLacks(t, fmt.Sprintf("apt-cache depends docker.io: %v (is apt-get update done?)", err))
	}
	var debs []string
	for _, l := range strings.Split(string(out), "\n") {
		if l == "" || l[0] == ' ' || l[0] == '<' || base[l] || slices.Contains(debs, l) {
			continue
		}
		debs = append(debs, l)
	}
	if !slices.Contains(debs, "docker.io") {
		t.Fatalf("docker.io is not among %q", debs)
	}
	slices.Sort(debs)
	return debs
}

func aptDownload(t *testing.T, dir string, pkgs ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("apt-get", append([]string{"download", "-q", "-o", "APT::Sandbox::User=root"}, pkgs...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		hostLacks(t, fmt.Sprintf("apt-get download %s: %v\n%s", strings.Join(pkgs, " "), err, tailString(string(out), 2000)))
	}
}

// hostLacks fails with CI=true and skips otherwise: the host cannot reach
// its Debian mirror, or has no package lists.
func hostLacks(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s", msg)
	}
	t.Skipf("host cannot provide the Debian packages: %s", msg)
}

func glob1(t *testing.T, dir, pat string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, pat))
	if len(m) != 1 {
		t.Fatalf("%s/%s: found %q", dir, pat, m)
	}
	return m[0]
}

// unpackDeb unpacks a .deb with dpkg-deb -x and returns the directory.
func unpackDeb(t *testing.T, deb string) string {
	t.Helper()
	dir := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, dir)
	return dir
}

// pythonStandIn writes a tarball in python-build-standalone's install_only
// layout (python/bin/python3, python/lib/python3.X). It is NOT a
// python-build-standalone build: the guest has no network and the test
// none either, so python/bin/python3 is a small shell wrapper around the
// test base's own /usr/bin/python3, and python/lib/python3.X a symlink to
// its standard library. "-m venv DIR" makes the venv from the real
// interpreter under this bin directory (so pyvenv.cfg's home is it, as
// with a real build) and puts pip in from Debian's pip wheel, because
// Debian's python3 has no ensurepip. It exercises what bainode does with
// the tarball (carry, verify, unpack, make venvs, verify versions), not a
// real static Python.
func pythonStandIn(t *testing.T, path, version, pipWheel string) {
	t.Helper()
	whl, err := os.ReadFile(pipWheel)
	if err != nil {
		t.Fatal(err)
	}
	whlName := filepath.Base(pipWheel)
	minor := strings.Join(strings.Split(version, ".")[:2], ".")
	wrapper := `#!/bin/sh
# bainode test stand-in for python-build-standalone's python3: it runs the
# test base's /usr/bin/python3 (see builder/payload/vm_test.go).
here=$(cd "$(dirname "$0")" && pwd -P)
if [ "$1" = -m ] && [ "$2" = venv ]; then
	shift 2
	"$here/.python3-real" -m venv --without-pip "$@" || exit
	whl=$here/../lib/bainode-test/` + whlName + `
	for d; do
		case $d in -*) continue ;; esac
		"$d/bin/python" "$whl/pip" install --no-index --no-cache-dir --disable-pip-version-check -q "$whl" || exit
	done
	exit 0
fi
exec "$here/.python3-real" "$@"
`
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	ts := time.Unix(0, 0)
	for _, h := range []struct {
		hdr  tar.Header
		data []byte
	}{
		{tar.Header{Name: "python/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "python/bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "python/bin/python3", Typeflag: tar.TypeReg, Mode: 0o755}, []byte(wrapper)},
		{tar.Header{Name: "python/bin/.python3-real", Typeflag: tar.TypeSymlink, Linkname: "/usr/bin/python3", Mode: 0o777}, nil},
		{tar.Header{Name: "python/lib/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "python/lib/python" + minor, Typeflag: tar.TypeSymlink, Linkname: "/usr/lib/python" + minor, Mode: 0o777}, nil},
		{tar.Header{Name: "python/lib/bainode-test/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "python/lib/bainode-test/" + whlName, Typeflag: tar.TypeReg, Mode: 0o644}, whl},
	} {
		hdr := h.hdr
		hdr.Size, hdr.ModTime = int64(len(h.data)), ts
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(h.data); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []interface{ Close() error }{tw, zw, f} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// payloadSite is the vm-test example with Docker (without compose:
// Debian 12 has no compose plugin package), the Python and one venv, and
// the test image, all from the payload.
func payloadSite(t *testing.T, pyVersion string) (*spec.Site, *spec.Node) {
	t.Helper()
	b, err := templates.FS.ReadFile("examples/vm-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y := string(b)
	for _, c := range []struct{ old, new string }{
		{"docker:\n  enabled: false\n  compose: false\n", "artifacts: payload\ndocker:\n  enabled: true\n  compose: false\n"},
		{"python:\n  enabled: false\n", fmt.Sprintf("python:\n  enabled: true\n  version: %s\n  release: %q\n  services: [agent]\n", pyVersion, testPyRelease)},
		{"images:\n  pull: []\n", "images:\n  pull: [" + testImage + "]\n"},
	} {
		if !strings.Contains(y, c.old) {
			t.Fatalf("examples/vm-test.yaml has no %q", c.old)
		}
		y = strings.Replace(y, c.old, c.new, 1)
	}
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

// tlog writes progress lines to the test log.
type tlog struct{ t *testing.T }

func (l *tlog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
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
	o := smoke.Options{
		Image: img.Disk, Seed: seedISO, SeedFormat: "iso",
		Drives:    []vm.Drive{{Path: payloadImg, Format: vm.FormatRaw, Media: vm.MediaDisk, ReadOnly: true}},
		NoNetwork: true,
		Timeout:   accel.Timeout(timeout), Accel: accel, MemoryMiB: memMiB, CPUs: 2,
		LogDir: filepath.Join(work, "logs"), Progress: &tlog{t},
	}
	if !img.Bootloader {
		o.Kernel, o.Initrd, o.Append = img.Kernel, img.Initrd, img.Append
	}
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
