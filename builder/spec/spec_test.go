package spec_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/templates"

	"github.com/lablup/bainode/builder/internal/golden"
)

// Each bad site has a golden file with the exact messages it must produce.
func TestBadSites(t *testing.T) {
	paths, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(paths) == 0 {
		t.Fatal("no test sites")
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			_, err := spec.Load(p)
			var se *spec.Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *spec.Error", err)
			}
			got := err.Error() + "\n"
			golden.Check(t, strings.TrimSuffix(p, ".yaml")+".golden", []byte(got))
			for _, pr := range se.Problems {
				if pr.Line == 0 || pr.Column == 0 {
					t.Errorf("%q has no position", pr.String())
				}
			}
		})
	}
}

func TestExamplesAreValid(t *testing.T) {
	names := []string{"site.yaml"}
	ex, _ := fs.Glob(templates.FS, "examples/*.yaml")
	names = append(names, ex...)
	for _, n := range names {
		b, _ := fs.ReadFile(templates.FS, n)
		if _, err := spec.Parse(n, b); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

func TestDefaultsAreTheGuides(t *testing.T) {
	s, err := spec.Parse("min.yaml", []byte("version: 1\nnodes: [{hostname: bai-aio}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	n := s.Nodes[0]
	if n.Role != "all-in-one" || n.Target != "ubuntu-20.04" {
		t.Errorf("role, target: got %s, %s; want all-in-one, ubuntu-20.04", n.Role, n.Target)
	}
	o := n.Operator
	if o.Name != "bai" || o.UID != 1100 || o.GID != 1100 || strings.Join(o.Groups, ",") != "sudo,docker" {
		t.Errorf("operator: got %+v, want bai 1100:1100 in sudo,docker", o)
	}
	if n.Limits.NOFILE != 512000 || n.Limits.NPROC != 65536 {
		t.Errorf("limits: got %+v", n.Limits)
	}
	if n.Python.Version != "3.12.4" || n.Python.Release != "20240713" || len(n.Python.Services) != 4 {
		t.Errorf("python: got %+v", n.Python)
	}
	if len(n.Images.Pull) != 4 || !strings.HasPrefix(n.Images.Pull[0], "cr.backend.ai/stable/") {
		t.Errorf("images: got %v, want the guide's four starter images", n.Images.Pull)
	}
	if len(n.Storage.Local) != 1 || n.Storage.Local[0] != "local" {
		t.Errorf("storage: got %+v, want /vfroot/local", n.Storage)
	}
	g := spec.GuideSysctl()
	if len(g) != 14 || g[8][0] != "net.ipv4.ip_local_port_range" || g[8][1] != "10000 65000" {
		t.Errorf("sysctl: got %v, want the guide's 14 keys with an unquoted port range", g)
	}
}

// Site, then role, then node: the last layer that sets a key wins, and
// lists are replaced, not merged.
func TestLayers(t *testing.T) {
	src := `version: 1
images:
  pull: [site/image:1]
gpu:
  driver: "535"
roles:
  agent:
    gpu: {enabled: true}
    limits: {nofile: 600000}
nodes:
  - hostname: m1
    role: manager
  - hostname: a1
    role: agent
  - hostname: a2
    role: agent
    gpu: {driver: "550"}
    images: {pull: []}
    python: {backendai: "24.09"}
`
	s, err := spec.Parse("layers.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	m, a1, a2 := s.Nodes[0], s.Nodes[1], s.Nodes[2]
	if m.GPU.Enabled || !a1.GPU.Enabled || !a2.GPU.Enabled {
		t.Errorf("gpu.enabled: got %v %v %v, want false true true", m.GPU.Enabled, a1.GPU.Enabled, a2.GPU.Enabled)
	}
	if a1.GPU.Driver != "535" || a2.GPU.Driver != "550" {
		t.Errorf("gpu.driver: got %s %s, want 535 550", a1.GPU.Driver, a2.GPU.Driver)
	}
	if m.Limits.NOFILE != 512000 || a1.Limits.NOFILE != 600000 {
		t.Errorf("limits.nofile: got %d %d", m.Limits.NOFILE, a1.Limits.NOFILE)
	}
	if len(m.Images.Pull) != 1 || len(a2.Images.Pull) != 0 {
		t.Errorf("images.pull: got %v and %v", m.Images.Pull, a2.Images.Pull)
	}
	if strings.Join(m.Python.Services, ",") != "manager,webserver" || strings.Join(a1.Python.Services, ",") != "agent" {
		t.Errorf("python.services by role: got %v %v", m.Python.Services, a1.Python.Services)
	}
	if a2.Python.Version != "3.12.6" || a2.Python.Release != "20240909" {
		t.Errorf("python.backendai 24.09: got %s+%s, want 3.12.6+20240909", a2.Python.Version, a2.Python.Release)
	}
	// Hosts: every node with an address, by default.
	if len(m.Hosts.Entries) != 0 {
		t.Errorf("hosts entries without addresses: got %v", m.Hosts.Entries)
	}
}

func TestHostsFromNodes(t *testing.T) {
	src := "version: 1\nnodes:\n  - {hostname: m1, role: manager, ip: 10.20.30.10/24, aliases: [bai-m1]}\n  - {hostname: a1, role: agent}\n"
	s, err := spec.Parse("h.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	e := s.Nodes[1].Hosts.Entries
	if len(e) != 1 || e[0].IP != "10.20.30.10" || strings.Join(e[0].Names, " ") != "m1 bai-m1" {
		t.Errorf("got %+v, want one entry 10.20.30.10 m1 bai-m1", e)
	}
}

func TestDiskSize(t *testing.T) {
	for in, want := range map[string]int64{"960G": 960e9, "894GiB": 894 << 30, "1.92T": 1.92e12, "2TB": 2e12, "1048576": 1 << 20} {
		if got, err := spec.DiskSize(in); err != nil || got != want {
			t.Errorf("DiskSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1G", "12", "1.2.3G", "5Q"} {
		if _, err := spec.DiskSize(in); err == nil {
			t.Errorf("DiskSize(%q) accepted", in)
		}
	}
}
