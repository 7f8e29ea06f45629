package render

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/plan"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/templates"
)

// siteEverything is the single-node example with every section on.
const siteEverything = `operator:
  password_hash: "$6$saltsalt$.XeWDrCjouuYgs/UGMlCRi7DbQGo.D1eElJrsOdTTiB3cMADnjs1koQGbOqnqfjNvuX4oBtad6mDPQUgJiwjZ1"
  ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB ops@example"]
gpu: {enabled: true, cuda: "12-2", toolkit: true}
storage: {nfs: [{name: data1, server: 10.20.30.5, export: /export/data1}]}
images: {registries: [{registry: cr.example.com, username: robot, token: t0ken}]}
docker: {daemon_json: {log-driver: json-file, log-opts: {max-size: 100m}}}
`

// TestUserDataSizes measures the layouts docs/cloud-init.md compares (run
// with -v for the table) and checks that the chosen ones are the smaller.
func TestUserDataSizes(t *testing.T) {
	b, err := fs.ReadFile(templates.FS, "examples/single-node.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type size struct{ plain, gz, leanPlain, leanGz int }
	measure := func(src string, strip, gzon bool) size {
		r, err := New(Options{keepComments: !strip})
		if err != nil {
			t.Fatal(err)
		}
		s, err := spec.Parse("single-node.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		s.Seed.Gzip = gzon
		f, err := r.Node(s, &s.Nodes[0])
		if err != nil {
			t.Fatal(err)
		}
		plain := f.UserData
		if gzon {
			zr, err := gzip.NewReader(bytes.NewReader(f.UserData))
			if err != nil {
				t.Fatal(err)
			}
			plain, _ = io.ReadAll(zr)
		}
		lean := withoutVerifier(plain)
		return size{len(plain), len(gz(plain)), len(lean), len(gz(lean))}
	}
	for _, site := range []struct{ name, src string }{{"default", string(b)}, {"everything on", string(b) + siteEverything}} {
		t.Logf("%s: layout | user-data | gzipped | without the verifier | gzipped", site.name)
		var sizes [2][2]size
		for i, strip := range []bool{false, true} {
			for j, gzon := range []bool{false, true} {
				z := measure(site.src, strip, gzon)
				sizes[i][j] = z
				layout := map[bool]string{false: "per-file gz+b64", true: "text, one gzip"}[gzon]
				if strip {
					layout += ", comments stripped"
				}
				t.Logf("%s | %d | %d | %d | %d", layout, z.plain, z.gz, z.leanPlain, z.leanGz)
			}
		}
		if s, k := sizes[1][0], sizes[0][0]; s.plain >= k.plain || s.gz >= k.gz {
			t.Errorf("%s: stripping comments does not shrink user-data: %+v vs %+v", site.name, s, k)
		}
		if g, p := sizes[1][1].gz, sizes[1][0].gz; g > p {
			t.Errorf("%s: seed.gzip's text layout gzips to %d, more than gzipping gz+b64 files (%d)", site.name, g, p)
		}
	}
}

// withoutVerifier drops the verifier's files from user-data: the lean
// layout an image that carries the verifier would allow.
func withoutVerifier(ud []byte) []byte {
	var out []string
	skip := false
	for _, l := range strings.SplitAfter(string(ud), "\n") {
		if strings.HasPrefix(l, "  - path: ") {
			skip = strings.Contains(l, "bainode-verify")
		} else if !strings.HasPrefix(l, " ") {
			skip = false
		}
		if !skip {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, ""))
}

// The single-node example, as it is and with every section on, does not
// fit EC2 even gzipped; without the on-node verifier it does, on every
// target, and the size error says so with the size it gives.
func TestVerifierOffFitsEC2(t *testing.T) {
	b, err := fs.ReadFile(templates.FS, "examples/single-node.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := plan.Targets()
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, extra string }{{"default", ""}, {"everything on", siteEverything}} {
		for target := range ts {
			name := target + " " + c.name
			src := strings.Replace(string(b), "target: ubuntu-20.04", "target: "+target, 1) + c.extra
			s, err := spec.Parse("single-node.yaml", []byte(src+"seed: {gzip: true}\n"))
			if err != nil {
				t.Fatal(err)
			}
			full, err := r.Node(s, &s.Nodes[0])
			if err != nil {
				t.Fatal(err)
			}
			if len(full.UserData) <= UserDataLimit {
				t.Fatalf("%s: the example is %d bytes gzipped; this test wants a node over the limit", name, len(full.UserData))
			}
			err = Clouds["ec2"].Fit("n", full)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("seed.verifier: false (%s bytes)", commas(full.LeanSize))) {
				t.Errorf("%s: size error %v does not offer seed.verifier: false with its size", name, err)
			}

			s, err = spec.Parse("single-node.yaml", []byte(src+"seed: {gzip: true, verifier: false}\n"))
			if err != nil {
				t.Fatal(err)
			}
			lean, err := r.Node(s, &s.Nodes[0])
			if err != nil {
				t.Fatal(err)
			}
			if len(lean.UserData) != full.LeanSize {
				t.Errorf("%s: seed.verifier: false gives %d bytes, the advice said %d", name, len(lean.UserData), full.LeanSize)
			}
			if err := Clouds["ec2"].Fit("n", lean); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			zr, err := gzip.NewReader(bytes.NewReader(lean.UserData))
			if err != nil {
				t.Fatal(err)
			}
			text, _ := io.ReadAll(zr)
			for _, p := range []string{"/usr/local/lib/bainode/bainode-verify", "/etc/systemd/system/bainode-verify.service"} {
				if strings.Contains(string(text), "path: \""+p+"\"") {
					t.Errorf("%s: seed.verifier: false still writes %s", name, p)
				}
			}
			for _, want := range []string{"path: \"/etc/bainode/verify.env\"", "VERIFIER=0"} {
				if !strings.Contains(string(text), want) {
					t.Errorf("%s: seed.verifier: false user-data lacks %s", name, want)
				}
			}
		}
	}
}
