package render_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/internal/testenv"
	"github.com/lablup/bainode/builder/spec"
)

// variant is one combination of the things that change the user-data's shape.
type variant struct {
	gpu, nfs, static, secrets bool
}

func (v variant) site(target string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\ntarget: %s\n", target)
	fmt.Fprintf(&b, "gpu: {enabled: %v, cuda: \"12-2\"}\n", v.gpu)
	if v.nfs {
		b.WriteString("storage: {local: [], nfs: [{name: data1, server: 10.20.30.5, export: /export/data1}]}\n")
	}
	if v.secrets {
		b.WriteString("operator:\n  sudo_nopasswd: false\n  password_hash: \"$6$saltsalt$.XeWDrCjouuYgs/UGMlCRi7DbQGo.D1eElJrsOdTTiB3cMADnjs1koQGbOqnqfjNvuX4oBtad6mDPQUgJiwjZ1\"\n")
		b.WriteString("  ssh_authorized_keys: [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB ops@example\"]\n")
		b.WriteString("images: {registries: [{registry: cr.example.com, username: robot, token: t0ken}]}\n")
		b.WriteString("docker: {daemon_json: {log-driver: json-file, log-opts: {max-size: 100m}}}\n")
	}
	b.WriteString("nodes:\n  - hostname: bai-n1\n    role: agent\n")
	if v.static {
		b.WriteString("    ip: 10.20.30.20/24\n    gateway: 10.20.30.1\n    dns: [10.20.30.1]\n    mac: \"52:54:00:20:30:20\"\n")
	}
	return b.String()
}

// Every shape of user-data passes the real cloud-init's schema check
// (Debian 12's cloud-init 22.4.2, the version our VM tests boot).
func TestCloudInitSchema(t *testing.T) {
	ci := testenv.Need(t, "cloud-init")
	r := renderer(t)
	// Each axis is on and off at least once per target, without all 16
	// combinations per target: cloud-init takes a second to start.
	variants := []variant{{}, {gpu: true, nfs: true}, {static: true, secrets: true}, {true, true, true, true}}
	for _, target := range spec.Targets {
		for _, v := range variants {
			name := fmt.Sprintf("%s/gpu=%v,nfs=%v,static=%v,secrets=%v", target, v.gpu, v.nfs, v.static, v.secrets)
			src := v.site(target)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s, err := spec.Parse("variant.yaml", []byte(src))
				if err != nil {
					t.Fatalf("%v\n%s", err, src)
				}
				f, err := r.Node(s, &s.Nodes[0])
				if err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(t.TempDir(), "user-data")
				os.WriteFile(p, f.UserData, 0o600)
				out, err := exec.Command(ci, "schema", "-c", p).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "Valid cloud-config") {
					t.Errorf("cloud-init schema: %v\n%s", err, out)
				}
				// The only tolerated remark is the string uid, which
				// cloud-init before 22.1 needs.
				for _, l := range strings.Split(string(out), "\n") {
					if strings.Contains(l, "DEPRECATED") && !strings.Contains(l, "users.0.uid") {
						t.Errorf("unexpected deprecation: %s", l)
					}
				}
			})
		}
	}
}

// seed.gzip's layout (every file as double-quoted text) passes too.
func TestCloudInitSchemaGzipLayout(t *testing.T) {
	ci := testenv.Need(t, "cloud-init")
	r := renderer(t)
	s, err := spec.Parse("variant.yaml", []byte(variant{true, true, true, true}.site("ubuntu-22.04")))
	if err != nil {
		t.Fatal(err)
	}
	s.Seed.Gzip = true
	f, err := r.Node(s, &s.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(f.UserData))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	p := filepath.Join(t.TempDir(), "user-data")
	os.WriteFile(p, plain, 0o600)
	out, err := exec.Command(ci, "schema", "-c", p).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Valid cloud-config") {
		t.Errorf("cloud-init schema: %v\n%s", err, out)
	}
}
