package spec_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/spec"

	"github.com/lablup/bainode/builder/internal/golden"
)

// hostile are site files too big to keep in testdata: each is generated, and
// its exact error text is in testdata/hostile/<name>.golden.
var hostile = []struct {
	name string
	src  func() string
}{
	{"billion-laughs", func() string {
		var b strings.Builder
		b.WriteString("version: 1\nx-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
		for i := 1; i <= 9; i++ {
			fmt.Fprintf(&b, "x-a%d: &a%d [", i, i)
			for j := 0; j < 10; j++ {
				if j > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "*a%d", i-1)
			}
			b.WriteString("]\n")
		}
		b.WriteString("docker:\n  daemon_json:\n    labels: *a9\nnodes: [{hostname: bai-aio}]\n")
		return b.String()
	}},
	{"deep-daemon-json-flow", func() string {
		return "version: 1\ndocker:\n  daemon_json:\n    x: " + strings.Repeat("[", 9000) + strings.Repeat("]", 9000) + "\nnodes: [{hostname: bai-aio}]\n"
	}},
	{"deep-daemon-json-block-1000", func() string {
		var b strings.Builder
		b.WriteString("version: 1\ndocker:\n  daemon_json:\n")
		for i := 0; i < 1000; i++ {
			fmt.Fprintf(&b, "%sk:\n", strings.Repeat(" ", 4+i))
		}
		b.WriteString("nodes: [{hostname: bai-aio}]\n")
		return b.String()
	}},
	{"too-big", func() string {
		return "version: 1\nnodes: [{hostname: bai-aio}]\n# " + strings.Repeat("x", spec.MaxFileSize) + "\n"
	}},
	{"too-many-values", func() string {
		return "version: 1\ndocker:\n  daemon_json:\n    x: [" + strings.Repeat("1,", spec.MaxValues) + "1]\nnodes: [{hostname: bai-aio}]\n"
	}},
	{"top-settings-times-nodes", func() string {
		// Each node decodes the top's settings again: 20,000 keys for
		// 200 nodes is 4 million values, over the loader's work budget.
		var b strings.Builder
		b.WriteString("version: 1\nsysctl:\n  set:\n")
		for i := 0; i < 20000; i++ {
			fmt.Fprintf(&b, "    net.x.k%d: \"1\"\n", i)
		}
		b.WriteString("nodes:\n")
		for i := 0; i < 200; i++ {
			fmt.Fprintf(&b, "  - hostname: bai-n%d\n", i)
		}
		return b.String()
	}},
}

// maxAlloc bounds what loading one hostile file may allocate in all: the
// limits must stop it long before it grows.
const maxAlloc = 256 << 20

func TestHostile(t *testing.T) {
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			src := []byte(h.src())
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := spec.Parse(h.name+".yaml", src)
			runtime.ReadMemStats(&after)
			var se *spec.Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *spec.Error", err)
			}
			a := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes in, %d MB allocated", len(src), a>>20)
			if a > maxAlloc {
				t.Errorf("loading allocated %d MB, want at most %d MB", a>>20, maxAlloc>>20)
			}
			for _, p := range se.Problems {
				if p.Line == 0 || p.Column == 0 {
					t.Errorf("%q has no position", p.String())
				}
			}
			golden.Check(t, filepath.Join("testdata", "hostile", h.name+".golden"), []byte(err.Error()+"\n"))
		})
	}
}

// A secret in a rejected value is never printed.
func TestSecretsNeverPrinted(t *testing.T) {
	secrets := []string{"hunter2", "p4ss", "s3cr3t", "dXNlcjpwYXNz", "secret@"}
	paths, _ := filepath.Glob("testdata/bad/*.yaml")
	for _, p := range paths {
		_, err := spec.Load(p)
		if err == nil {
			continue
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: the error shows the secret %q:\n%v", p, s, err)
			}
		}
	}
}

// Aliases and merge keys are read as YAML means them: a role block written
// as an alias applies, and a node's own keys win over merged ones.
func TestAliasesApply(t *testing.T) {
	src := `version: 1
x-gpu: &gpu
  gpu: {enabled: true, driver: "550"}
x-node: &node
  role: agent
  ip: 10.20.30.21/24
  gateway: 10.20.30.1
roles:
  agent: *gpu
  manager:
    <<: *gpu
    gpu: {enabled: false}
nodes:
  - <<: *node
    hostname: bai-a1
  - <<: *node
    hostname: bai-a2
    ip: 10.20.30.22/24
  - hostname: bai-m1
    role: manager
`
	s, err := spec.Parse("alias.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	a1, a2, m1 := s.Nodes[0], s.Nodes[1], s.Nodes[2]
	if !a1.GPU.Enabled || a1.GPU.Driver != "550" || a1.Role != "agent" {
		t.Errorf("a1: got role %s, gpu %+v; want an agent with gpu 550 from the aliased role block", a1.Role, a1.GPU)
	}
	if a1.IP != "10.20.30.21/24" || a2.IP != "10.20.30.22/24" || a2.Gateway != "10.20.30.1" {
		t.Errorf("merged node keys: got %s, %s via %s", a1.IP, a2.IP, a2.Gateway)
	}
	if m1.GPU.Enabled {
		t.Errorf("m1: the manager block's own gpu must win over the merged one")
	}
}

// Warnings do not stop loading, and carry their position.
func TestWarnings(t *testing.T) {
	src := "version: 1\noperator: {uid: 500}\nnodes:\n  - {hostname: bai-aio, ip: 10.20.30.10/24}\n"
	s, err := spec.Parse("warn.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range s.Warnings {
		if w.Severity != spec.SeverityWarning {
			t.Errorf("%s: severity %s", w, w.Severity)
		}
		got = append(got, w.String())
	}
	want := []string{
		"warn.yaml:2:17: warning: operator.uid: 500 is in the system range (below 1000) and may clash with an account a package creates",
		"warn.yaml:4:29: warning: nodes[0].ip: no gateway: the node gets no default route (fine on an isolated network)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Values near the rules' edges that real sites use must still load.
func TestEdgesAccepted(t *testing.T) {
	src := `version: 1
x-notes: anything, for anchors
docker:
  daemon_json:
    authorization-plugins: [authz-broker]
    log-opts: {max-size: 10m}
    default-ulimits: {nofile: {Name: nofile, Hard: 65536, Soft: 65536}}
images:
  registries: [{registry: "nvcr.io", username: "$oauthtoken", token: "nvapi-AbC_123=="}]
storage:
  nfs: [{name: v6, server: "[fd00::10]", export: /srv/vfroot, options: "rw,hard,vers=4.2"}]
nodes:
  - {hostname: bai-p2p, ip: 10.9.9.0/31, gateway: 10.9.9.1}
  - {hostname: bai-a1.site-01.example, mac: "52:54:00:12:34:56", ip: 10.20.30.21/24, gateway: 10.20.30.1, dns: ["fd00::53", 10.20.30.53]}
`
	if _, err := spec.Parse("edges.yaml", []byte(src)); err != nil {
		t.Fatal(err)
	}
}
