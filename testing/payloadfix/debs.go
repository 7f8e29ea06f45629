package payloadfix

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lablup/bainode/testing/qemu"
)

// basePackages lists what the test base has installed, by simulating its
// build on the host: apt resolves minbase (Essential and Priority: required,
// plus apt) and testing/qemu/packages.txt against an empty dpkg status,
// without recommends, as mmdebstrap --variant=minbase does. It also returns
// the base's Python version.
func basePackages(t testing.TB) (map[string]bool, string) {
	t.Helper()
	want := qemu.Packages()
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
func dockerDebs(t testing.TB, base map[string]bool) []string {
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

func aptDownload(t testing.TB, dir string, pkgs ...string) {
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

func glob1(t testing.TB, dir, pat string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, pat))
	if len(m) != 1 {
		t.Fatalf("%s/%s: found %q", dir, pat, m)
	}
	return m[0]
}

// unpackDeb unpacks a .deb with dpkg-deb -x and returns the directory.
func unpackDeb(t testing.TB, deb string) string {
	t.Helper()
	dir := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, dir)
	return dir
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
