package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var bainodeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bainode-cli-test")
	if err != nil {
		panic(err)
	}
	bainodeBin = filepath.Join(dir, "bainode")
	// Built the way users get it: static, without cgo.
	cmd := exec.Command("go", "build", "-o", bainodeBin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// bainode runs the binary and returns stdout, stderr and the exit code.
func bainode(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bainodeBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "site.yaml")
	os.WriteFile(bad, []byte("version: 1\nnodes:\n  - hostname: a\n    ip: 10.0.0.300\n"), 0o644)
	warn := filepath.Join(dir, "warn.yaml")
	os.WriteFile(warn, []byte("version: 1\noperator: {uid: 500}\nnodes: [{hostname: a}]\n"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"validate"}, 0, "ok, 1 node(s)"},
		{[]string{"validate", "--example", "cluster"}, 0, "3 node(s)"},
		{[]string{"validate", "--config", bad}, 2, `site.yaml:4:9: nodes[0].ip: "10.0.0.300" is not an IPv4 address`},
		{[]string{"validate", "--config", filepath.Join(dir, "missing.yaml")}, 1, "no such file"},
		{[]string{"validate", "--config", warn}, 0, "warn.yaml:2:17: warning: operator.uid: 500 is in the system range"},
		{[]string{"validate", "--strict", "--config", warn}, 2, "warn.yaml:2:17: warning: operator.uid"},
		{[]string{"validate", "--example", "nope"}, 2, `no built-in example "nope"`},
		{[]string{"render", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"render", "--target", "ubuntu-18.04"}, 2, "--target"},
		{[]string{"render", "--node", "ghost"}, 2, `--node "ghost"`},
		{[]string{"seed", "--format", "udf", "-o", dir}, 2, "seed format"},
		{[]string{"frobnicate"}, 2, "no command"},
		{[]string{"version"}, 0, "bainode "},
	} {
		out, errs, code := bainode(t, "", tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.out) {
			t.Errorf("bainode %s: exit %d, want %d; want output with %q, got:\n%s%s", strings.Join(tc.args, " "), code, tc.code, tc.out, out, errs)
		}
	}
}

func TestSeedOutputs(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "site.yaml")
	os.WriteFile(site, []byte(`version: 1
operator:
  ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB ops@example"]
nodes:
  - hostname: n1
  - hostname: n2
    operator: {ssh_authorized_keys: []}
`), 0o644)
	out := filepath.Join(dir, "out")
	if o, e, code := bainode(t, "", "seed", "--config", site, "-o", out); code != 0 {
		t.Fatalf("seed: %d\n%s%s", code, o, e)
	}
	for _, n := range []string{"n1", "n2"} {
		for _, f := range []string{"user-data", "meta-data", "network-config", "vendor-data", "seed.iso"} {
			if _, err := os.Stat(filepath.Join(out, n, f)); err != nil {
				t.Error(err)
			}
		}
	}
	mode := func(p string) os.FileMode { fi, _ := os.Stat(p); return fi.Mode().Perm() }
	if m := mode(filepath.Join(out, "n1", "user-data")); m != 0o600 {
		t.Errorf("n1 user-data has SSH keys: mode %v, want 0600", m)
	}
	if m := mode(filepath.Join(out, "n2", "user-data")); m != 0o644 {
		t.Errorf("n2 user-data has no secrets: mode %v, want 0644", m)
	}
	if m := mode(filepath.Join(out, "n1", "seed.iso")); m != 0o600 {
		t.Errorf("seed mode %v, want 0600", m)
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(filepath.Join(out, "n1"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	// vfat seeds
	if o, e, code := bainode(t, "", "seed", "--config", site, "--format", "vfat", "--node", "n2", "-o", out); code != 0 {
		t.Fatalf("seed vfat: %d\n%s%s", code, o, e)
	}
	if _, err := os.Stat(filepath.Join(out, "n2", "seed.img")); err != nil {
		t.Error(err)
	}
}

func TestRenderStdout(t *testing.T) {
	out, errs, code := bainode(t, "", "render", "--example", "cluster", "--node", "bai-a01", "--stdout")
	if code != 0 || !strings.HasPrefix(out, "#cloud-config\n") || !strings.Contains(out, "hostname: \"bai-a01\"\n") {
		t.Errorf("exit %d, stdout starts %.60q, stderr %s", code, out, errs)
	}
	if !strings.Contains(errs, "AWS EC2") {
		t.Errorf("no size warning on stderr: %q", errs)
	}
	if _, _, code := bainode(t, "", "render", "--example", "cluster", "--stdout"); code != 2 {
		t.Errorf("--stdout with three nodes: exit %d, want 2", code)
	}
}

func TestInit(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "site.yaml")
	if _, e, code := bainode(t, "", "init", p); code != 0 {
		t.Fatalf("init: %d %s", code, e)
	}
	if _, e, code := bainode(t, "", "validate", "--config", p); code != 0 {
		t.Errorf("the file init writes does not validate: %s", e)
	}
	if _, e, code := bainode(t, "", "init", p); code == 0 || !strings.Contains(e, "already exists") {
		t.Errorf("init over an existing file: exit %d, %q", code, e)
	}
	out, _, _ := bainode(t, "", "init", "--example", "vm-test")
	if !strings.Contains(out, "target: debian-12") {
		t.Errorf("init --example vm-test printed:\n%s", out)
	}
}

func TestPasswd(t *testing.T) {
	out, errs, code := bainode(t, "correct horse\n", "passwd")
	h := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(h, "$6$") || strings.Contains(out+errs, "correct horse") {
		t.Fatalf("exit %d, out %q, err %q", code, out, errs)
	}
	// The hash is accepted by the site file, and checks with the library.
	ok, err := checkPassword("correct horse", h)
	if err != nil || !ok {
		t.Errorf("hash %q does not verify: %v", h, err)
	}
	site := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(site, []byte("version: 1\noperator: {password_hash: \""+h+"\"}\nnodes: [{hostname: n1}]\n"), 0o644)
	if _, e, code := bainode(t, "", "validate", "--config", site); code != 0 {
		t.Errorf("site with the hash: %s", e)
	}
	if _, _, code := bainode(t, "\n", "passwd"); code != 2 {
		t.Errorf("empty password: exit %d, want 2", code)
	}
}
