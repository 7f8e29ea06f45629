package fetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ulikunitz/xz"

	"github.com/lablup/bainode/builder/internal/testsrv"
)

type testDeb struct {
	name, version, arch, depends, preDepends, provides string
}

// fileName is how Docker's and NVIDIA's repositories name .debs: no epoch.
func (d testDeb) fileName() string {
	v := d.version
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	return fmt.Sprintf("%s_%s_%s.deb", d.name, v, d.arch)
}

// repoSpec describes a test apt repository.
type repoSpec struct {
	prefix     string // "" for dists style, or the flat repo's directory
	suite      string
	debs       []testDeb
	signer     *openpgp.Entity
	validUntil time.Time
	exts       []string // Packages index compressions listed in InRelease
	tamper     func(inRelease []byte) []byte
	badIndex   bool // serve a Packages.gz other than the one InRelease hashes
}

// buildRepo returns the repository's files (path -> bytes).
func buildRepo(t *testing.T, r repoSpec) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	var pk strings.Builder
	for i, d := range r.debs {
		body := testsrv.RandomBytes(uint64(100+i), 2000+i*37)
		filename := "pool/stable/" + d.fileName()
		if r.prefix != "" {
			filename = "./" + d.fileName()
		}
		files[r.prefix+"/"+strings.TrimPrefix(filename, "./")] = body
		fmt.Fprintf(&pk, "Package: %s\nVersion: %s\nArchitecture: %s\n", d.name, d.version, d.arch)
		for k, v := range map[string]string{"Pre-Depends": d.preDepends, "Depends": d.depends, "Provides": d.provides} {
			if v != "" {
				fmt.Fprintf(&pk, "%s: %s\n", k, v)
			}
		}
		fmt.Fprintf(&pk, "Filename: %s\nSize: %d\nSHA256: %s\nDescription: test package\n second line\n .\n after a blank\n\n",
			filename, len(body), testsrv.SumHex(body))
	}
	plain := []byte(pk.String())
	dir, dist := "stable/binary-amd64/", r.prefix+"/dists/"+r.suite+"/"
	if r.prefix != "" {
		dir, dist = "", r.prefix+"/"
	}
	var rel strings.Builder
	fmt.Fprintf(&rel, "Origin: Test\nLabel: Test\nSuite: %s\nCodename: %s\nDate: %s\n", r.suite, r.suite,
		time.Now().UTC().Format(time.RFC1123))
	if !r.validUntil.IsZero() {
		fmt.Fprintf(&rel, "Valid-Until: %s\n", r.validUntil.UTC().Format(time.RFC1123))
	}
	rel.WriteString("Architectures: amd64 arm64\nComponents: stable\nSHA256:\n")
	for _, ext := range r.exts {
		var b []byte
		switch ext {
		case "":
			b = plain
		case ".gz":
			var buf bytes.Buffer
			w := gzip.NewWriter(&buf)
			w.Write(plain)
			w.Close()
			b = buf.Bytes()
		case ".xz":
			var buf bytes.Buffer
			w, _ := xz.NewWriter(&buf)
			w.Write(plain)
			w.Close()
			b = buf.Bytes()
		}
		fmt.Fprintf(&rel, " %s %d %s\n", testsrv.SumHex(b), len(b), dir+"Packages"+ext)
		if r.badIndex {
			b = append(append([]byte{}, b...), 0)
		}
		files[dist+dir+"Packages"+ext] = b
	}
	in := testsrv.ClearSign(t, r.signer, rel.String())
	if r.tamper != nil {
		in = r.tamper(in)
	}
	files[dist+"InRelease"] = in
	return files
}

var dockerLikeDebs = []testDeb{
	{name: "app", version: "1.0-1", arch: "amd64", preDepends: "init-system-helpers (>= 1.54~)",
		depends: "libfoo (<< 2.0) | libbar, base-files (>= 10), virt-thing, ghost-lib (>= 3) | ghost-alt, libc6:any (>= 2.17)"},
	{name: "app", version: "9.9-1", arch: "arm64"},
	{name: "libfoo", version: "1.1-1", arch: "amd64", depends: "libfoo-common (= 1.1-1)"},
	{name: "libfoo", version: "1.3-1", arch: "amd64", depends: "libfoo-common (= 1.3-1)"},
	{name: "libfoo", version: "2.0-1", arch: "amd64", depends: "libfoo-common (= 2.0-1)"},
	{name: "libfoo-common", version: "1.3-1", arch: "all"},
	{name: "libfoo-common", version: "2.0-1", arch: "all"},
	{name: "libbar", version: "1.0-1", arch: "amd64"},
	{name: "impl-a", version: "1.0", arch: "amd64", provides: "virt-thing"},
	{name: "tool", version: "1.0-1", arch: "amd64"},
	{name: "tool", version: "2.0-1", arch: "amd64"},
	{name: "docker-ce", version: "5:20.10.24~3-0~ubuntu-focal", arch: "amd64"},
	{name: "docker-ce", version: "5:24.0.7-1~ubuntu.20.04~focal", arch: "amd64", depends: "containerd.io (>= 1.6.24)"},
	{name: "docker-ce", version: "5:9.0-1", arch: "amd64"},
	{name: "containerd.io", version: "1.6.24-1", arch: "amd64"},
	{name: "containerd.io", version: "1.7.25-1", arch: "amd64"},
}

const focalManifest = "adduser\t3.118ubuntu2\nbase-files\t11ubuntu5.6\nlibc6:amd64\t2.31-0ubuntu9.9\n" +
	"init-system-helpers\t1.57\nsnap:lxd\t24322\n"

func TestAptResolveAndDownload(t *testing.T) {
	signer := testsrv.Key(t, "repo signer")
	srv := testsrv.NewFiles(t, buildRepo(t, repoSpec{suite: "focal", debs: dockerLikeDebs, signer: signer,
		exts: []string{".gz", ""}, validUntil: time.Now().Add(24 * time.Hour)}))
	src := AptSource{URI: srv.URL + "/", Suite: "focal", Components: []string{"stable"}, Keyring: openpgp.EntityList{signer}}
	pkgs, err := src.Packages(context.Background(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if gets := srv.Gets("/dists/focal/stable/binary-amd64/Packages.gz"); gets != 1 {
		t.Errorf("Packages.gz fetched %d times", gets)
	}
	inst, err := ParseManifest([]byte(focalManifest))
	if err != nil {
		t.Fatal(err)
	}
	res, err := NewAptIndex(pkgs).Resolve([]string{"app", "tool=1.0-1", "docker-ce", "adduser"}, inst)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range res.Packages {
		got = append(got, p.String())
	}
	want := []string{"app=1.0-1", "containerd.io=1.7.25-1", "docker-ce=5:24.0.7-1~ubuntu.20.04~focal", "impl-a=1.0",
		"libfoo=1.3-1", "libfoo-common=1.3-1", "tool=1.0-1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("resolved %v\nwant     %v", got, want)
	}
	if want := []string{"adduser", "base-files", "init-system-helpers", "libc6"}; !reflect.DeepEqual(res.Satisfied, want) {
		t.Errorf("satisfied %v, want %v", res.Satisfied, want)
	}
	if want := []string{"ghost-lib (>= 3) | ghost-alt"}; !reflect.DeepEqual(res.Missing, want) {
		t.Errorf("missing %v, want %v", res.Missing, want)
	}

	arts := res.Artifacts()
	if a := arts[2]; a.Name != "docker-ce_24.0.7-1~ubuntu.20.04~focal_amd64.deb" || a.Version != "5:24.0.7-1~ubuntu.20.04~focal" ||
		a.URL != srv.URL+"/pool/stable/"+a.Name || a.Kind != "deb" {
		t.Errorf("docker-ce artifact %+v", a)
	}
	dl, err := Download(context.Background(), openTestCache(t), arts, testOptions())
	if err != nil || dl.Fetched != len(want) {
		t.Fatalf("download: %+v, %v", dl, err)
	}

	for _, bad := range [][]string{{"nosuch"}, {"tool=3.0"}} {
		if _, err := NewAptIndex(pkgs).Resolve(bad, nil); err == nil {
			t.Errorf("Resolve(%v) succeeded", bad)
		}
	}
}

func TestAptFlatRepositoryWithXZ(t *testing.T) {
	signer := testsrv.Key(t, "nvidia-like")
	debs := []testDeb{
		{name: "nvidia-container-toolkit", version: "1.17.8-1", arch: "amd64",
			depends: "nvidia-container-toolkit-base (= 1.17.8-1), libnvidia-container-tools (>= 1.17.8-1), libnvidia-container-tools (<< 2.0.0)"},
		{name: "nvidia-container-toolkit-base", version: "1.17.8-1", arch: "amd64"},
		{name: "nvidia-container-toolkit-base", version: "1.18.0-1", arch: "amd64"},
		{name: "libnvidia-container-tools", version: "1.17.8-1", arch: "amd64", depends: "libnvidia-container1 (>= 1.17.8-1), libc6 (>= 2.7)"},
		{name: "libnvidia-container1", version: "1.17.8-1", arch: "amd64"},
	}
	srv := testsrv.NewFiles(t, buildRepo(t, repoSpec{prefix: "/stable/deb/amd64", suite: "", debs: debs, signer: signer, exts: []string{".xz"}}))
	src := AptSource{URI: srv.URL + "/stable/deb/amd64", Suite: "/", Keyring: openpgp.EntityList{signer}}
	pkgs, err := src.Packages(context.Background(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	res, err := NewAptIndex(pkgs).Resolve([]string{"nvidia-container-toolkit"}, Installed{"libc6": "2.31-0ubuntu9.9"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Packages) != 4 || res.Packages[3].String() != "nvidia-container-toolkit-base=1.17.8-1" {
		t.Errorf("resolved %v", res.Packages)
	}
	if _, err := Download(context.Background(), openTestCache(t), res.Artifacts(), testOptions()); err != nil {
		t.Fatal(err)
	}
}

func TestAptRejectsBadRepositories(t *testing.T) {
	signer, stranger := testsrv.Key(t, "signer"), testsrv.Key(t, "stranger")
	cases := map[string]struct {
		spec repoSpec
		want string
		arch string
	}{
		"tampered InRelease": {repoSpec{tamper: func(b []byte) []byte {
			return bytes.Replace(b, []byte("Label: Test"), []byte("Label: Evil"), 1)
		}}, "bad signature", ""},
		"signed by another key":  {repoSpec{signer: stranger}, "bad signature", ""},
		"Packages.gz mismatch":   {repoSpec{badIndex: true}, "does not match InRelease", ""},
		"expired":                {repoSpec{validUntil: time.Now().Add(-time.Hour)}, "expired", ""},
		"no index for the arch":  {repoSpec{}, "lists no stable/binary-arm64/Packages", "arm64"},
		"not clearsigned at all": {repoSpec{tamper: func([]byte) []byte { return []byte("Suite: focal\n") }}, "not a clearsigned", ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			spec := c.spec
			spec.suite, spec.debs = "focal", dockerLikeDebs[:3]
			if spec.signer == nil {
				spec.signer = signer
			}
			if spec.exts == nil {
				spec.exts = []string{".gz"}
			}
			srv := testsrv.NewFiles(t, buildRepo(t, spec))
			src := AptSource{URI: srv.URL, Suite: "focal", Components: []string{"stable"}, Arch: c.arch, Keyring: openpgp.EntityList{signer}}
			_, err := src.Packages(context.Background(), testOptions())
			if err == nil {
				t.Fatal("accepted")
			}
			mustContain(t, err.Error(), c.want, srv.URL+"/dists/focal/")
			if strings.Contains(c.want, "signature") {
				if gets := srv.Gets("/dists/focal/stable/binary-amd64/Packages.gz"); gets != 0 {
					t.Error("Packages.gz was fetched before InRelease verified")
				}
			}
		})
	}
}

func TestParseDepends(t *testing.T) {
	got, err := parseDepends("libc6 (>= 2.17), a:any | b (<<1.0~) , c [amd64], d (=1)")
	if err != nil {
		t.Fatal(err)
	}
	var rels []string
	for _, r := range got {
		rels = append(rels, r.String())
	}
	want := []string{"libc6 (>= 2.17)", "a:any | b (<< 1.0~)", "c [amd64]", "d (= 1)"}
	if !reflect.DeepEqual(rels, want) {
		t.Errorf("got %q, want %q", rels, want)
	}
	if _, err := parseDepends("a (1.0)"); err == nil {
		t.Error("a constraint without operator was accepted")
	}
}

func TestParseManifest(t *testing.T) {
	inst, err := ParseManifest([]byte(focalManifest))
	if err != nil {
		t.Fatal(err)
	}
	want := Installed{"adduser": "3.118ubuntu2", "base-files": "11ubuntu5.6", "libc6": "2.31-0ubuntu9.9", "init-system-helpers": "1.57"}
	if !reflect.DeepEqual(inst, want) {
		t.Errorf("got %v", inst)
	}
	if _, err := ParseManifest([]byte("a b c\n")); err == nil {
		t.Error("a three-field line was accepted")
	}
}

// The resolver backtracks: across versions (a pin on b makes a step back to
// a 1.0) and across alternatives (x would need a newer z than the pinned
// one, so y is taken), whatever the order of the requests.
func TestResolveBacktracks(t *testing.T) {
	pkgs := []AptPackage{
		{Package: "a", Version: "2.0", Depends: "b (>= 2)"},
		{Package: "a", Version: "1.0", Depends: "b"},
		{Package: "b", Version: "2.0"},
		{Package: "b", Version: "1.0"},
		{Package: "c", Version: "1", Depends: "x | y, ghost (>= 1)"},
		{Package: "x", Version: "1", Depends: "z (>= 2)"},
		{Package: "y", Version: "1"},
		{Package: "z", Version: "2"},
		{Package: "z", Version: "1"},
	}
	ix := NewAptIndex(pkgs)
	want := []string{"a=1.0", "b=1.0", "c=1", "y=1", "z=1"}
	reqs := []string{"a", "b=1.0", "c", "z=1"}
	for i := range reqs {
		order := append(append([]string(nil), reqs[i:]...), reqs[:i]...)
		res, err := ix.Resolve(order, nil)
		if err != nil {
			t.Fatalf("%v: %v", order, err)
		}
		var got []string
		for _, p := range res.Packages {
			got = append(got, p.String())
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(res.Missing, []string{"ghost (>= 1)"}) {
			t.Errorf("%v: got %v missing %v, want %v", order, got, res.Missing, want)
		}
	}
	if _, err := ix.Resolve([]string{"b=1.0", "a", "b=2.0"}, nil); err == nil {
		t.Error("two pins of b resolved")
	}
	if _, err := ix.Resolve([]string{"x", "z=1"}, nil); err == nil {
		t.Error("x with z=1 resolved")
	}
}

func TestReadParagraphsRejects(t *testing.T) {
	for name, in := range map[string]string{
		"signed":       "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nPackage: a\n",
		"no colon":     "Package: a\nVersion 1\n",
		"continuation": " orphan\nPackage: a\n",
	} {
		if _, err := ReadParagraphs([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
