package render_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/templates"

	"github.com/lablup/bainode/builder/internal/golden"
)

func renderer(t testing.TB) *render.Renderer {
	t.Helper()
	r, err := render.New(render.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func example(t testing.TB, name, target string) *spec.Site {
	t.Helper()
	b, err := fs.ReadFile(templates.FS, "examples/"+name+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	if target != "" {
		b = bytes.Replace(b, []byte("\ntarget: "), []byte("\ntarget: "+target+"\n#was: "), 1)
	}
	s, err := spec.Parse(name+".yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Golden files for every built-in example on every target.
func TestGolden(t *testing.T) {
	r := renderer(t)
	for _, ex := range []string{"single-node", "cluster", "vm-test"} {
		for _, target := range spec.Targets {
			s := example(t, ex, target)
			for i := range s.Nodes {
				n := &s.Nodes[i]
				f, err := r.Node(s, n)
				if err != nil {
					t.Fatalf("%s/%s/%s: %v", ex, target, n.Hostname, err)
				}
				dir := filepath.Join("testdata", "golden", ex, target, n.Hostname)
				for name, got := range f.Map() {
					p := filepath.Join(dir, name)
					if name == "user-data" {
						got = goldenView(t, got)
					}
					golden.Check(t, p, got)
				}
			}
		}
	}
}

// goldenView keeps golden user-data reviewable: each gz+b64 file is shown
// as its size and sha256; TestUserDataCarriesTheGuide decodes the real ones.
func goldenView(t *testing.T, b []byte) []byte {
	t.Helper()
	lines := strings.SplitAfter(string(b), "\n")
	for i := 1; i < len(lines); i++ {
		pre, enc, ok := strings.Cut(lines[i], "content: ")
		if !ok || !strings.HasSuffix(strings.TrimSpace(lines[i-1]), "encoding: gz+b64") {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
		if err != nil {
			t.Fatalf("gz+b64 content: %v", err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("gz+b64 content: %v", err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("gz+b64 content: %v", err)
		}
		lines[i] = fmt.Sprintf("%scontent: <gz+b64 of %d bytes, sha256 %x>\n", pre, len(plain), sha256.Sum256(plain))
	}
	return []byte(strings.Join(lines, ""))
}

type cloudConfig struct {
	Hostname   string `yaml:"hostname"`
	ManageHost bool   `yaml:"manage_etc_hosts"`
	Users      []struct {
		Name         string   `yaml:"name"`
		UID          any      `yaml:"uid"`
		PrimaryGroup string   `yaml:"primary_group"`
		Groups       []string `yaml:"groups"`
		Passwd       string   `yaml:"passwd"`
		Sudo         string   `yaml:"sudo"`
	} `yaml:"users"`
	WriteFiles []struct {
		Path, Owner, Permissions, Encoding, Content string
	} `yaml:"write_files"`
	Runcmd []any `yaml:"runcmd"`
}

func parseUserData(t *testing.T, b []byte) cloudConfig {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("#cloud-config\n")) {
		t.Fatalf("user-data does not start with #cloud-config")
	}
	var c cloudConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("user-data is not YAML: %v", err)
	}
	return c
}

func fileContent(t *testing.T, c cloudConfig, path string) (string, bool) {
	t.Helper()
	for _, f := range c.WriteFiles {
		if f.Path != path {
			continue
		}
		if f.Owner != "root:root" {
			t.Errorf("%s: owner %q; write_files runs before users exist, so only root:root is safe", path, f.Owner)
		}
		if f.Encoding == "" {
			return f.Content, true
		}
		raw, err := base64.StdEncoding.DecodeString(f.Content)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, _ := io.ReadAll(zr)
		return string(b), true
	}
	return "", false
}

// What the guide asks for is in the user-data, in the form every cloud-init
// version reads the same way.
func TestUserDataCarriesTheGuide(t *testing.T) {
	r := renderer(t)
	s := example(t, "cluster", "")
	f, err := r.Node(s, &s.Nodes[1]) // bai-a01, a GPU agent
	if err != nil {
		t.Fatal(err)
	}
	c := parseUserData(t, f.UserData)
	if c.ManageHost {
		t.Error("manage_etc_hosts is on; it would wipe the hosts block on every boot")
	}
	u := c.Users[0]
	// ubuntu-20.04 ships 20.1 (ignores an integer uid) and 24.4.1 (degrades
	// on a string one): the user is made in bootcmd, with no uid key.
	if u.Name != "bai" || u.UID != nil || u.PrimaryGroup != "bai" || strings.Join(u.Groups, ",") != "sudo,docker" {
		t.Errorf("user: got %+v; want bai, no uid, group bai, in sudo,docker", u)
	}
	if !strings.Contains(string(f.UserData), `useradd -m -u 1100 -g 'bai' -G 'sudo,docker' -s '/bin/bash' 'bai'`) {
		t.Errorf("bootcmd does not make bai with uid 1100:\n%s", f.UserData)
	}
	if len(c.Runcmd) != 1 {
		t.Errorf("runcmd has %d commands; one keeps its status meaningful", len(c.Runcmd))
	}
	limits, _ := fileContent(t, c, "/etc/security/limits.d/99-backendai.conf")
	for _, want := range []string{"root hard nofile 512000", "root soft nofile 512000", "root hard nproc 65536", "root soft nproc 65536",
		"bai hard nofile 512000", "bai soft nofile 512000", "bai hard nproc 65536", "bai soft nproc 65536"} {
		if !strings.Contains(limits, want+"\n") {
			t.Errorf("limits file lacks the guide's line %q", want)
		}
	}
	sysctl, _ := fileContent(t, c, "/etc/sysctl.d/99-backendai.conf")
	if !strings.Contains(sysctl, "\nnet.ipv4.ip_local_port_range = 10000 65000\n") {
		t.Errorf("sysctl file: want the port range unquoted, got:\n%s", sysctl)
	}
	for _, l := range strings.Split(sysctl, "\n") {
		if !strings.HasPrefix(l, "#") && strings.ContainsAny(l, `"'`) {
			t.Errorf("sysctl line %q has quotes, which sysctl -p rejects", l)
		}
	}
	hosts, _ := fileContent(t, c, "/etc/bainode/hosts.block")
	if !strings.HasPrefix(hosts, render.HostsBegin+"\n") || !strings.HasSuffix(hosts, render.HostsEnd+"\n") || !strings.Contains(hosts, "10.20.30.22 bai-a02") {
		t.Errorf("hosts block:\n%s", hosts)
	}
	env, _ := fileContent(t, c, "/etc/bainode/provision.env")
	for _, want := range []string{"GPU=1", "TOOLKIT=1", "NVIDIA_DRIVER_PACKAGES='nvidia-headless-no-dkms-535-server nvidia-utils-535-server'",
		"NVIDIA_PRECOMPILED_PACKAGES='linux-modules-nvidia-535-server-{kernel}'", "NVIDIA_DKMS_PACKAGES='nvidia-dkms-535-server linux-headers-{kernel}'", "DOCKER=1", "COMPOSE=1", "PYTHON_URL='https://github.com/astral-sh/python-build-standalone/releases/download/20240713/cpython-3.12.4+20240713-x86_64-unknown-linux-gnu-install_only.tar.gz'"} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("provision.env lacks %q", want)
		}
	}
	// Static files arrive intact: see TestStaticFilesRoundTrip.
	fstab, ok := fileContent(t, c, "/etc/bainode/fstab")
	if !ok || fstab != "10.20.30.5:/export/vfroot/data1 /vfroot/data1 nfs rw,hard,nfsvers=4.1,_netdev 0 0\n" {
		t.Errorf("fstab: got %q", fstab)
	}
}

func TestSecretsMarked(t *testing.T) {
	r := renderer(t)
	base := "version: 1\nnodes: [{hostname: n1}]\n"
	for _, tc := range []struct {
		extra  string
		secret bool
	}{
		{"", false},
		{"operator: {password_hash: \"$6$saltsalt$.XeWDrCjouuYgs/UGMlCRi7DbQGo.D1eElJrsOdTTiB3cMADnjs1koQGbOqnqfjNvuX4oBtad6mDPQUgJiwjZ1\"}\n", true},
		{"operator: {ssh_authorized_keys: [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB ops@example\"]}\n", true},
		{"images: {registries: [{registry: cr.example.com, username: u, token: sekrit}]}\n", true},
	} {
		s, err := spec.Parse("s.yaml", []byte(base+tc.extra))
		if err != nil {
			t.Fatal(err)
		}
		f, err := r.Node(s, &s.Nodes[0])
		if err != nil {
			t.Fatal(err)
		}
		if f.Secret != tc.secret {
			t.Errorf("%q: Secret = %v, want %v", tc.extra, f.Secret, tc.secret)
		}
		if strings.Contains(tc.extra, "sekrit") {
			c := parseUserData(t, f.UserData)
			for _, wf := range c.WriteFiles {
				if wf.Path == "/etc/bainode/registry-auth" && wf.Permissions != "0600" {
					t.Errorf("registry-auth mode %s, want 0600", wf.Permissions)
				}
			}
		}
	}
}

// A changed config must be a new instance, so cloud-init runs again.
func TestInstanceIDFollowsContent(t *testing.T) {
	r := renderer(t)
	id := func(src string) string {
		s, err := spec.Parse("s.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		f, err := r.Node(s, &s.Nodes[0])
		if err != nil {
			t.Fatal(err)
		}
		return string(f.MetaData)
	}
	a := id("version: 1\nnodes: [{hostname: n1}]\n")
	b := id("version: 1\nnodes: [{hostname: n1}]\n")
	c := id("version: 1\nlimits: {nofile: 600000}\nnodes: [{hostname: n1}]\n")
	if a != b || a == c {
		t.Errorf("instance ids: same config %q/%q, changed config %q", a, b, c)
	}
}

// seed.gzip gzips the whole user-data with every file as plain text; it
// carries the same files as the plain user-data, and the warning names a
// remedy that works.
func TestGzipAndSizeWarning(t *testing.T) {
	r := renderer(t)
	s := example(t, "cluster", "")
	f, err := r.Node(s, &s.Nodes[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(f.UserData) <= render.UserDataLimit || len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], "#include") {
		t.Errorf("%d bytes of user-data, warnings %q; want one naming #include", len(f.UserData), f.Warnings)
	}
	s.Seed.Gzip = true
	g, err := r.Node(s, &s.Nodes[1])
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(g.UserData))
	if err != nil {
		t.Fatalf("gzip user-data: %v", err)
	}
	plain, _ := io.ReadAll(zr)
	a, b := parseUserData(t, f.UserData), parseUserData(t, plain)
	if len(a.WriteFiles) != len(b.WriteFiles) {
		t.Fatalf("%d files plain, %d gzipped", len(a.WriteFiles), len(b.WriteFiles))
	}
	for _, wf := range a.WriteFiles {
		x, _ := fileContent(t, a, wf.Path)
		y, ok := fileContent(t, b, wf.Path)
		if !ok || x != y {
			t.Errorf("%s differs between the plain and the gzipped user-data", wf.Path)
		}
	}
	if len(g.UserData) > render.UserDataLimit && (len(g.Warnings) != 1 || !strings.Contains(g.Warnings[0], "#include")) {
		t.Errorf("%d bytes gzipped, warnings %q", len(g.UserData), g.Warnings)
	}
}

// GPU nodes carry the driver gate and its two units; other nodes do not.
func TestGPUGateOnlyOnGPUNodes(t *testing.T) {
	r := renderer(t)
	s := example(t, "cluster", "")
	paths := []string{"/usr/local/lib/bainode/bainode-gpu-gate",
		"/etc/systemd/system/bainode-gpu-gate.service", "/etc/systemd/system/bainode-gpu-reboot.service"}
	for i, gpu := range map[int]bool{0: false, 1: true} { // bai-m01, bai-a01
		n := &s.Nodes[i]
		if n.GPU.Enabled != gpu {
			t.Fatalf("%s: gpu.enabled is %v in the example; the test wants %v", n.Hostname, n.GPU.Enabled, gpu)
		}
		f, err := r.Node(s, n)
		if err != nil {
			t.Fatal(err)
		}
		c := parseUserData(t, f.UserData)
		for _, p := range paths {
			if content, ok := fileContent(t, c, p); ok != gpu {
				t.Errorf("%s (gpu %v): %s present %v", n.Hostname, gpu, p, ok)
			} else if ok && p == paths[0] && !strings.Contains(content, "modinfo -b") {
				t.Errorf("%s: %s is not the gate script", n.Hostname, p)
			}
		}
	}
}
