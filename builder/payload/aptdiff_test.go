package payload

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/fetch"
)

// These tests check bainode's apt side against apt and dpkg-dev themselves:
// the Packages index a payload carries, and the packages the resolver picks.
// The repository is a local flat one of .debs built here; no network.

// poolDeb is a test package: extra holds further control lines.
type poolDeb struct{ name, version, extra string }

// buildPool writes the .debs into a new directory and bainode's indexes
// (Packages, Packages.gz, Release) next to them, as a payload's apt/ holds.
func buildPool(t *testing.T, debs []poolDeb) (dir string, packages []byte) {
	t.Helper()
	needTool(t, "dpkg-deb", "dpkg")
	dir = t.TempDir()
	var entries []*entry
	for i, d := range debs {
		root := filepath.Join(t.TempDir(), "root")
		if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
			t.Fatal(err)
		}
		ctl := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: amd64\nMaintainer: bainode tests <tests@example.invalid>\n%s"+
			"Description: bainode resolver test package\n A package made by the apt tests.\n .\n Second paragraph.\n", d.name, d.version, d.extra)
		if err := os.WriteFile(filepath.Join(root, "DEBIAN/control"), []byte(ctl), 0o644); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%s_%s_amd64.deb", d.name, strings.ReplaceAll(d.version, ":", "%3a"))
		out := filepath.Join(dir, name)
		comp := []string{"none", "gzip", "xz", "zstd"}[i%4]
		run(t, "dpkg-deb", "-Z"+comp, "--root-owner-group", "-b", root, out)
		c, err := ReadDebControl(out)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, &entry{item: Item{Kind: KindDeb, Name: name, SHA256: fileSum(t, out)},
			dst: "apt/" + name, size: fi.Size(), control: c})
	}
	_, pk, gz, rel, err := aptRepo(entries)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"Packages": pk, "Packages.gz": gz, "Release": rel} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, pk
}

// aptIn runs apt-get or apt-cache on the flat repository dir alone, with
// its own state and cache and the given dpkg status, as a normal user may.
// It runs "update" first.
func aptIn(t *testing.T, dir, status string, tool string, args ...string) string {
	t.Helper()
	out, err := aptTry(t, dir, status, tool, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return out
}

func aptTry(t *testing.T, dir, status string, tool string, args ...string) (string, error) {
	t.Helper()
	needTool(t, "apt-get", "apt")
	tmp := t.TempDir()
	for _, d := range []string{"state/lists/partial", "cache/archives/partial", "etc/parts", "etc/prefs", "log"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"sources.list": "deb [trusted=yes] file:" + dir + " ./\n",
		"status":       status,
	}
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(tmp, "sources.list"),
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(tmp, "etc/parts"),
		"-o", "Dir::Etc::PreferencesParts=" + filepath.Join(tmp, "etc/prefs"),
		"-o", "Dir::Etc::Preferences=" + filepath.Join(tmp, "etc/prefs/none"),
		"-o", "Dir::State=" + filepath.Join(tmp, "state"),
		"-o", "Dir::State::status=" + filepath.Join(tmp, "status"),
		"-o", "Dir::Cache=" + filepath.Join(tmp, "cache"),
		"-o", "Dir::Log=" + filepath.Join(tmp, "log"),
		"-o", "Debug::NoLocking=true",
		"-o", "APT::Sandbox::User=root",
		"-o", "APT::Architecture=amd64",
		"-o", "APT::Architectures::=amd64",
		"-o", "APT::Install-Recommends=false",
		"-o", "APT::Get::List-Cleanup=false",
	}
	run(t, "apt-get", append(opts, "-q", "update")...)
	cmd := exec.Command(tool, append(opts, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// indexFields reads the named fields of each stanza, continuation lines
// kept as they are, by plain text matching (not through bainode's parser),
// keyed "package=version".
func indexFields(t *testing.T, text string, fields ...string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, st := range strings.Split(strings.TrimSpace(text), "\n\n") {
		m := map[string]string{}
		last := ""
		for _, line := range strings.Split(st, "\n") {
			if strings.HasPrefix(line, " ") {
				if last != "" {
					m[last] += "\n" + line
				}
				continue
			}
			last = ""
			for _, f := range fields {
				if v, ok := strings.CutPrefix(line, f+": "); ok {
					m[f], last = v, f
				}
			}
		}
		if m["Package"] == "" {
			continue
		}
		k := m["Package"] + "=" + m["Version"]
		if _, dup := out[k]; dup {
			t.Errorf("%s listed twice", k)
		}
		out[k] = m
	}
	return out
}

// The Packages index bainode writes reads back in apt to what
// dpkg-scanpackages makes of the same .debs: same packages, versions and
// the fields apt uses.
func TestPackagesIndexMatchesAptAndScanpackages(t *testing.T) {
	needTool(t, "dpkg-scanpackages", "dpkg-dev")
	debs := []poolDeb{
		{"app", "1:2.0~rc1-3", "Depends: libfoo (>= 1.2~) | libfoo-alt, python3:any, tool (<< 3)\nPre-Depends: init-system-helpers (>= 1.54~)\n"},
		{"app", "1:2.0-1", "Depends: libfoo (>= 1.2~)\n"},
		{"app", "2.0+dfsg-1", ""},
		{"libfoo", "1.2~beta1-0ubuntu1", "Provides: libfoo-abi (= 1.2), libfoo-alt\nMulti-Arch: same\n"},
		{"tool", "2.9.1-1~22.04", "Breaks: app (<< 1:2.0)\nHomepage: https://example.invalid/tool\n"},
	}
	dir, pk := buildPool(t, debs)

	fields := []string{"Package", "Version", "Architecture", "Filename", "Size", "SHA256", "Depends", "Pre-Depends", "Provides", "Breaks", "Multi-Arch", "Description"}
	cmd := exec.Command("dpkg-scanpackages", "--multiversion", ".", "/dev/null")
	cmd.Dir = dir
	scan, err := cmd.Output()
	if err != nil {
		t.Fatalf("dpkg-scanpackages: %v", err)
	}
	want := indexFields(t, string(scan), fields...)
	// apt-cache show lists every version apt read (dumpavail only the newest).
	apt := indexFields(t, aptIn(t, dir, "", "apt-cache", "show", "app", "libfoo", "tool"), fields...)
	ours := indexFields(t, string(pk), fields...)
	if len(want) != len(debs) {
		t.Fatalf("dpkg-scanpackages lists %d packages, built %d:\n%s", len(want), len(debs), scan)
	}
	if !reflect.DeepEqual(apt, want) {
		t.Errorf("apt reads bainode's index as\n%v\ndpkg-scanpackages says\n%v", apt, want)
	}
	if !reflect.DeepEqual(ours, want) {
		t.Errorf("bainode's index\n%v\ndpkg-scanpackages says\n%v", ours, want)
	}
	// bainode's own reader agrees too.
	idx, err := fetch.ParsePackages(pk)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range idx {
		w, ok := want[p.Package+"="+p.Version]
		if !ok || w["Depends"] != p.Depends || w["Filename"] != p.Filename || w["SHA256"] != p.SHA256 {
			t.Errorf("fetch.ParsePackages: %+v, dpkg-scanpackages: %v", p, w)
		}
	}
}

// A slice of the real Docker, NVIDIA container toolkit and nfs-common
// dependency graphs (names, relation shapes and versions as in their
// repositories), with older versions and alternatives to choose among.
var resolverPool = []poolDeb{
	// Docker
	{"docker-ce", "5:25.0.3-1~ubuntu.22.04~jammy", "Pre-Depends: init-system-helpers (>= 1.54~)\nDepends: containerd.io (>= 1.6.24), docker-ce-cli, iptables, libseccomp2 (>= 2.3.0), libc6 (>= 2.34), libsystemd0\nRecommends: apparmor, ca-certificates, git, pigz\n"},
	{"docker-ce", "5:24.0.7-1~ubuntu.22.04~jammy", "Pre-Depends: init-system-helpers (>= 1.54~)\nDepends: containerd.io (>= 1.6.4), docker-ce-cli, iptables, libseccomp2 (>= 2.3.0), libc6 (>= 2.34), libsystemd0\n"},
	{"docker-ce-cli", "5:25.0.3-1~ubuntu.22.04~jammy", "Depends: libc6 (>= 2.34)\n"},
	{"docker-ce-cli", "5:24.0.7-1~ubuntu.22.04~jammy", "Depends: libc6 (>= 2.34)\n"},
	{"containerd.io", "1.6.28-1", "Depends: libc6 (>= 2.34), libseccomp2 (>= 2.4.1)\nProvides: containerd, runc\nConflicts: containerd, runc\n"},
	{"containerd.io", "1.6.20-1", "Depends: libc6 (>= 2.34), libseccomp2 (>= 2.4.1)\nProvides: containerd, runc\nConflicts: containerd, runc\n"},
	{"docker-buildx-plugin", "0.12.1-1~ubuntu.22.04~jammy", "Depends: libc6 (>= 2.34)\n"},
	{"docker-compose-plugin", "2.24.5-1~ubuntu.22.04~jammy", "Depends: libc6 (>= 2.34)\n"},
	{"iptables", "1.8.7-1ubuntu5.2", "Depends: libip4tc2 (= 1.8.7-1ubuntu5.2), libip6tc2 (= 1.8.7-1ubuntu5.2), libxtables12 (= 1.8.7-1ubuntu5.2), netbase, libc6 (>= 2.34), libmnl0 (>= 1.0.3-4~), libnetfilter-conntrack3, libnfnetlink0, libnftnl11 (>= 1.1.6)\n"},
	{"libip4tc2", "1.8.7-1ubuntu5.2", "Depends: libc6 (>= 2.28)\n"},
	{"libip4tc2", "1.8.7-1ubuntu5", "Depends: libc6 (>= 2.28)\n"},
	{"libip6tc2", "1.8.7-1ubuntu5.2", "Depends: libc6 (>= 2.28)\n"},
	{"libxtables12", "1.8.7-1ubuntu5.2", "Depends: libc6 (>= 2.34)\n"},
	{"netbase", "6.3", ""},
	{"libmnl0", "1.0.4-3build2", "Depends: libc6 (>= 2.14)\n"},
	{"libnetfilter-conntrack3", "1.0.9-1", "Depends: libc6 (>= 2.14), libmnl0 (>= 1.0.3-4~), libnfnetlink0\n"},
	{"libnfnetlink0", "1.0.1-3build3", "Depends: libc6 (>= 2.14)\n"},
	{"libnftnl11", "1.2.1-1build1", "Depends: libc6 (>= 2.14), libmnl0 (>= 1.0.3-4~)\n"},
	{"libseccomp2", "2.5.3-2ubuntu2", "Depends: libc6 (>= 2.14)\n"},
	{"libseccomp2", "2.4.3-1ubuntu1", "Depends: libc6 (>= 2.14)\n"},
	{"libsystemd0", "249.11-0ubuntu3.12", "Pre-Depends: libc6 (>= 2.34), libcap2 (>= 1:2.24-9~), libgcrypt20 (>= 1.9.0), liblz4-1 (>= 0.0~r127), liblzma5 (>= 5.1.1alpha+20120614), libzstd1 (>= 1.4.0)\n"},
	{"libcap2", "1:2.44-1ubuntu0.22.04.1", "Depends: libc6 (>= 2.34)\n"},
	{"libgcrypt20", "1.9.4-3ubuntu3", "Depends: libc6 (>= 2.34), libgpg-error0 (>= 1.27)\n"},
	{"libgpg-error0", "1.43-3", "Depends: libc6 (>= 2.34)\n"},
	{"liblz4-1", "1.9.3-2build2", "Depends: libc6 (>= 2.14)\n"},
	{"liblzma5", "5.2.5-2ubuntu1", "Depends: libc6 (>= 2.34)\n"},
	{"libzstd1", "1.4.8+dfsg-3build1", "Depends: libc6 (>= 2.14)\n"},
	{"init-system-helpers", "1.62", "Depends: perl-base (>= 5.20.1-3)\n"},
	{"perl-base", "5.34.0-3ubuntu1.3", "Pre-Depends: libc6 (>= 2.35), libcrypt1 (>= 1:4.1.0)\n"},
	{"libcrypt1", "1:4.4.27-1", "Depends: libc6 (>= 2.25)\n"},
	{"libc6", "2.35-0ubuntu3.6", "Depends: libgcc-s1\n"},
	{"libc6", "2.31-0ubuntu9.14", "Depends: libgcc-s1, libcrypt1 (>= 1:4.4.10-10ubuntu4)\n"},
	{"libgcc-s1", "12.3.0-1ubuntu1~22.04", "Depends: gcc-12-base (= 12.3.0-1ubuntu1~22.04), libc6 (>= 2.35)\n"},
	{"gcc-12-base", "12.3.0-1ubuntu1~22.04", ""},
	// NVIDIA container toolkit
	{"nvidia-container-toolkit", "1.17.8-1", "Depends: nvidia-container-toolkit-base (= 1.17.8-1), libnvidia-container-tools (>= 1.17.8-1), libnvidia-container-tools (<< 2.0.0)\n"},
	{"nvidia-container-toolkit", "1.14.6-1", "Depends: nvidia-container-toolkit-base (= 1.14.6-1), libnvidia-container-tools (>= 1.14.6-1), libnvidia-container-tools (<< 2.0.0)\n"},
	{"nvidia-container-toolkit-base", "1.17.8-1", ""},
	{"nvidia-container-toolkit-base", "1.14.6-1", ""},
	{"libnvidia-container-tools", "1.17.8-1", "Depends: libnvidia-container1 (>= 1.17.8-1), libc6 (>= 2.7)\n"},
	{"libnvidia-container-tools", "1.14.6-1", "Depends: libnvidia-container1 (>= 1.14.6-1), libc6 (>= 2.7)\n"},
	{"libnvidia-container1", "1.17.8-1", "Depends: libc6 (>= 2.27), libseccomp2 (>= 2.4.0), libcap2 (>= 1:2.10)\n"},
	{"libnvidia-container1", "1.14.6-1", "Depends: libc6 (>= 2.27), libseccomp2, libcap2 (>= 1:2.10)\n"},
	// nfs-common
	{"nfs-common", "1:2.6.1-1ubuntu1.2", "Depends: adduser, ucf, libc6 (>= 2.34), libcap2 (>= 1:2.10), libcom-err2 (>= 1.43.9), libdevmapper1.02.1 (>= 2:1.02.20), libevent-core-2.1-7 (>= 2.1.8-stable), libgssapi-krb5-2 (>= 1.17), libkeyutils1 (>= 1.5.9), libkrb5-3 (>= 1.13~alpha1+dfsg), libmount1 (>= 2.19.1), libnfsidmap1 (>= 1:2.6.1), libtirpc3 (>= 1.0.2), libwrap0 (>= 7.6-4~), rpcbind, keyutils, lsb-base (>= 1.3-9ubuntu3) | sysvinit-utils\nRecommends: python3\n"},
	{"adduser", "3.118ubuntu5", "Depends: passwd, debconf (>= 0.5) | debconf-2.0\n"},
	{"passwd", "1:4.8.1-2ubuntu2.2", "Depends: libpam-modules, libc6 (>= 2.34)\n"},
	{"libpam-modules", "1.4.0-11ubuntu2.4", "Pre-Depends: libc6 (>= 2.34)\n"},
	{"debconf", "1.5.79ubuntu1", "Pre-Depends: perl-base (>= 5.20.1-3~)\nProvides: debconf-2.0\n"},
	{"cdebconf", "0.261ubuntu1", "Provides: debconf-2.0\nDepends: libc6 (>= 2.34)\n"},
	{"ucf", "3.0043", "Depends: debconf (>= 1.5.19), coreutils (>= 5.91)\n"},
	{"coreutils", "8.32-4.1ubuntu1.2", "Pre-Depends: libc6 (>= 2.34)\n"},
	{"libcom-err2", "1.46.5-2ubuntu1.1", "Depends: libc6 (>= 2.17)\n"},
	{"libdevmapper1.02.1", "2:1.02.175-2.1ubuntu4", "Depends: libc6 (>= 2.34), dmsetup (>= 2:1.02.175-2.1ubuntu4~)\n"},
	{"dmsetup", "2:1.02.175-2.1ubuntu4", "Depends: libc6 (>= 2.34)\n"},
	{"libevent-core-2.1-7", "2.1.12-stable-1build3", "Depends: libc6 (>= 2.34)\n"},
	{"libgssapi-krb5-2", "1.19.2-2ubuntu0.3", "Depends: libc6 (>= 2.33), libcom-err2 (>= 1.43.9), libk5crypto3 (>= 1.16), libkrb5-3 (= 1.19.2-2ubuntu0.3), libkrb5support0 (>= 1.15~beta1)\n"},
	{"libk5crypto3", "1.19.2-2ubuntu0.3", "Depends: libc6 (>= 2.33), libkrb5support0 (= 1.19.2-2ubuntu0.3)\n"},
	{"libkrb5-3", "1.19.2-2ubuntu0.3", "Depends: libc6 (>= 2.34), libcom-err2 (>= 1.43.9), libk5crypto3 (>= 1.15~beta1), libkeyutils1 (>= 1.5.9), libkrb5support0 (= 1.19.2-2ubuntu0.3)\n"},
	{"libkrb5-3", "1.19.2-2", "Depends: libc6 (>= 2.34), libkrb5support0 (= 1.19.2-2)\n"},
	{"libkrb5support0", "1.19.2-2ubuntu0.3", "Depends: libc6 (>= 2.34)\n"},
	{"libkrb5support0", "1.19.2-2", "Depends: libc6 (>= 2.34)\n"},
	{"libkeyutils1", "1.6.1-2ubuntu3", "Depends: libc6 (>= 2.14)\n"},
	{"keyutils", "1.6.1-2ubuntu3", "Depends: libc6 (>= 2.34), libkeyutils1 (>= 1.5.9)\n"},
	{"libmount1", "2.37.2-4ubuntu3", "Depends: libblkid1 (>= 2.17.2), libc6 (>= 2.34), libselinux1 (>= 3.1~)\n"},
	{"libblkid1", "2.37.2-4ubuntu3", "Depends: libc6 (>= 2.33)\n"},
	{"libselinux1", "3.3-1build2", "Depends: libc6 (>= 2.34), libpcre2-8-0 (>= 10.22)\n"},
	{"libpcre2-8-0", "10.39-3ubuntu0.1", "Depends: libc6 (>= 2.14)\n"},
	{"libnfsidmap1", "1:2.6.1-1ubuntu1.2", "Depends: libc6 (>= 2.34)\n"},
	{"libtirpc3", "1.3.2-2ubuntu0.1", "Depends: libc6 (>= 2.34), libgssapi-krb5-2 (>= 1.17), libtirpc-common (>= 1.3.2-2ubuntu0.1)\n"},
	{"libtirpc-common", "1.3.2-2ubuntu0.1", ""},
	{"libwrap0", "7.6.q-31build2", "Depends: libc6 (>= 2.33)\n"},
	{"rpcbind", "1.2.6-2build1", "Depends: libc6 (>= 2.34), libsystemd0, libtirpc3 (>= 1.0.2), libwrap0 (>= 7.6-4~), adduser, lsb-base (>= 3.0-6)\n"},
	{"lsb-base", "11.1.0ubuntu4", ""},
	{"sysvinit-utils", "3.01-1ubuntu1", "Depends: lsb-base (>= 11.0.0), libc6 (>= 2.34)\n"},
}

var instLine = regexp.MustCompile(`(?m)^Inst (\S+) (?:\[\S+\] )?\((\S+) `)

// The resolver picks what apt-get install --simulate picks on the same
// index, for the Docker, NVIDIA toolkit and nfs-common sets: from an empty
// system, from one with some packages installed, and with pins. Where a pin
// needs a step back from the newest version of an unpinned request, apt
// gives up (it does not backtrack) while the resolver finds a set; apt must
// then accept that set as it is.
func TestResolveMatchesApt(t *testing.T) {
	dir, pk := buildPool(t, resolverPool)
	pkgs, err := fetch.ParsePackages(pk)
	if err != nil {
		t.Fatal(err)
	}
	ix := fetch.NewAptIndex(pkgs)
	installed := fetch.Installed{"libc6": "2.35-0ubuntu3.6", "libgcc-s1": "12.3.0-1ubuntu1~22.04", "gcc-12-base": "12.3.0-1ubuntu1~22.04", "lsb-base": "11.1.0ubuntu4", "adduser": "3.118ubuntu5", "passwd": "1:4.8.1-2ubuntu2.2", "libpam-modules": "1.4.0-11ubuntu2.4", "debconf": "1.5.79ubuntu1", "perl-base": "5.34.0-3ubuntu1.3", "libcrypt1": "1:4.4.27-1", "coreutils": "8.32-4.1ubuntu1.2"}
	var status strings.Builder
	names := make([]string, 0, len(installed))
	for n := range installed {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&status, "Package: %s\nStatus: install ok installed\nVersion: %s\nArchitecture: amd64\nMaintainer: tests <tests@example.invalid>\nDescription: installed\n\n", n, installed[n])
	}
	for _, c := range []struct {
		name     string
		requests []string
		aptAlone bool // apt's own resolver finds a set
	}{
		{"docker", []string{"docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin"}, true},
		{"docker pinned", []string{"docker-ce=5:24.0.7-1~ubuntu.22.04~jammy", "docker-ce-cli=5:24.0.7-1~ubuntu.22.04~jammy", "containerd.io=1.6.20-1"}, true},
		{"nvidia", []string{"nvidia-container-toolkit"}, true},
		{"nvidia pinned late", []string{"libnvidia-container-tools", "nvidia-container-toolkit=1.14.6-1", "nvidia-container-toolkit-base=1.14.6-1", "libnvidia-container1=1.14.6-1"}, false},
		{"nfs-common", []string{"nfs-common"}, true},
	} {
		for _, withInst := range []bool{false, true} {
			inst, st := fetch.Installed{}, ""
			if withInst {
				inst, st = installed, status.String()
			}
			t.Run(fmt.Sprintf("%s/installed=%v", c.name, withInst), func(t *testing.T) {
				res, err := ix.Resolve(c.requests, inst)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, p := range res.Packages {
					got = append(got, p.Package+"="+p.Version)
				}
				sort.Strings(got)
				if len(res.Missing) > 0 {
					t.Errorf("missing %v", res.Missing)
				}
				simulate := func(reqs []string) ([]string, string, error) {
					out, err := aptTry(t, dir, st, "apt-get", append([]string{"install", "--simulate", "-y"}, reqs...)...)
					var picks []string
					for _, m := range instLine.FindAllStringSubmatch(out, -1) {
						picks = append(picks, m[1]+"="+m[2])
					}
					sort.Strings(picks)
					return picks, out, err
				}
				want, out, err := simulate(c.requests)
				if c.aptAlone != (err == nil) {
					t.Fatalf("apt-get install --simulate %v: %v, expected it to succeed: %v\n%s", c.requests, err, c.aptAlone, out)
				}
				if c.aptAlone && !reflect.DeepEqual(got, want) {
					t.Errorf("resolver picks\n%v\napt-get --simulate picks\n%v", got, want)
				}
				// apt installs the resolver's set, pinned, and nothing more.
				if want, out, err = simulate(got); err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("apt-get on the resolver's set: %v, installs\n%v\nwant\n%v\n%s", err, want, got, out)
				}
			})
		}
	}
}
