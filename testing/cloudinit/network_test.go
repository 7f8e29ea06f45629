package cloudinit_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/testing/cloudinit"
)

// A node's DNS search domains reach every renderer of every cloud-init
// version the targets ship: the network-config render writes is read by
// each tree's own network_state and rendered as ENI (dns-search) and
// netplan (nameservers.search), as `cloud-init devel net-convert` does.
func TestNetworkConfigSearchDomains(t *testing.T) {
	trees := cloudinit.Trees(t)
	r, err := render.New(render.Options{Version: "matrix"})
	if err != nil {
		t.Fatal(err)
	}
	src := "version: 1\nnodes:\n  - hostname: bai-n1\n    ip: 10.20.30.20/24\n    gateway: 10.20.30.1\n" +
		"    dns: [10.20.30.1]\n    dns_search: [lab.example.com, corp.example.org]\n    mac: \"52:54:00:20:30:20\"\n"
	s, err := spec.Parse("site.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.Node(s, &s.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	nc := filepath.Join(t.TempDir(), "network-config")
	if err := os.WriteFile(nc, f.NetworkConfig, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tr := range trees {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			for _, c := range []struct{ distro, kind, want string }{
				{"debian", "eni", "dns-search lab.example.com corp.example.org"},
				{"ubuntu", "netplan", "lab.example.com"},
			} {
				dir := t.TempDir()
				cmd := tr.Command(t.Context(), "devel", "net-convert", "--network-data", nc, "--kind", "yaml",
					"--directory", dir, "--distro", c.distro, "--output-kind", c.kind)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("cloud-init %s net-convert -O %s: %v\n%s", tr.Package, c.kind, err, out)
				}
				// Where the file goes differs between versions: read what was written.
				var b []byte
				filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
					if err == nil && fi.Mode().IsRegular() {
						x, _ := os.ReadFile(p)
						b = append(b, x...)
					}
					return nil
				})
				if !strings.Contains(string(b), c.want) || !strings.Contains(string(b), "corp.example.org") {
					t.Errorf("cloud-init %s -O %s: no %q in what it wrote:\n%s\n%s", tr.Package, c.kind, c.want, b, out)
				}
			}
		})
	}
}
