package cloudinit_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/templates"
)

// rendered is one node's cloud-init files, written to disk.
type rendered struct {
	target, name string
	dir          string // user-data, meta-data, network-config
	files        render.Files
	node         *spec.Node
}

// variantSite is one combination of the things that change the
// user-data's shape: each axis is on and off at least once per target.
func variantSite(target string, gpu, nfs, static, secrets bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\ntarget: %s\n", target)
	fmt.Fprintf(&b, "gpu: {enabled: %v, cuda: \"12-2\"}\n", gpu)
	if nfs {
		b.WriteString("storage: {local: [], nfs: [{name: data1, server: 10.20.30.5, export: /export/data1}]}\n")
	}
	if secrets {
		b.WriteString("operator:\n  sudo_nopasswd: false\n  password_hash: \"$6$saltsalt$.XeWDrCjouuYgs/UGMlCRi7DbQGo.D1eElJrsOdTTiB3cMADnjs1koQGbOqnqfjNvuX4oBtad6mDPQUgJiwjZ1\"\n")
		b.WriteString("  ssh_authorized_keys: [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB ops@example\"]\n")
		b.WriteString("images: {registries: [{registry: cr.example.com, username: robot, token: t0ken}]}\n")
	}
	b.WriteString("nodes:\n  - hostname: bai-n1\n    role: agent\n")
	if static {
		b.WriteString("    ip: 10.20.30.20/24\n    gateway: 10.20.30.1\n    dns: [10.20.30.1]\n    mac: \"52:54:00:20:30:20\"\n")
	}
	return b.String()
}

// example is a built-in example site retargeted.
func example(t testing.TB, name, target string) []byte {
	b, err := fs.ReadFile(templates.FS, "examples/"+name+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Replace(b, []byte("\ntarget: "), []byte("\ntarget: "+target+"\n#was: "), 1)
}

// renderAll renders, for every target, the variants and the example sites.
func renderAll(t testing.TB) []rendered {
	t.Helper()
	r, err := render.New(render.Options{Version: "matrix"})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	var out []rendered
	add := func(target, name string, src []byte, all bool) {
		s, err := spec.Parse(name+".yaml", src)
		if err != nil {
			t.Fatalf("%s %s: %v", target, name, err)
		}
		for i := range s.Nodes {
			if !all && i > 0 {
				break
			}
			n := &s.Nodes[i]
			f, err := r.Node(s, n)
			if err != nil {
				t.Fatalf("%s %s: %v", target, name, err)
			}
			id := fmt.Sprintf("%s/%s/%s", target, name, n.Hostname)
			dir := filepath.Join(root, strings.ReplaceAll(id, "/", "_"))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for fn, b := range f.Map() {
				if err := os.WriteFile(filepath.Join(dir, fn), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			out = append(out, rendered{target: target, name: id, dir: dir, files: f, node: n})
		}
	}
	for _, target := range spec.Targets {
		for i := 0; i < 4; i++ {
			v := [4]bool{i&1 != 0, i&2 != 0, i == 1 || i == 2, i == 3}
			name := fmt.Sprintf("gpu=%v,nfs=%v,static=%v,secrets=%v", v[0], v[1], v[2], v[3])
			add(target, name, []byte(variantSite(target, v[0], v[1], v[2], v[3])), false)
		}
		for _, ex := range []string{"vm-test", "cluster", "single-node"} {
			add(target, ex, example(t, ex, target), true)
		}
	}
	return out
}
