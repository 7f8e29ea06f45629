package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/cpio"
	"github.com/lablup/bainode/builder/deploy"
	"github.com/lablup/bainode/builder/iso"
)

// TestIsoImageCommand writes image-mode ISOs: generic (0644, the server on
// the kernel command line, reproducible) and per node (its config fetched
// from a loopback stand-in of bainoded's node.cpio route, 0600), and
// refuses wrong input with usage errors.
func TestIsoImageCommand(t *testing.T) {
	if _, err := iso.FindCDLoaders("/"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %v", err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	env := filepath.Join(dir, "env")
	os.Mkdir(env, 0o755)
	os.WriteFile(filepath.Join(env, "vmlinuz"), bytes.Repeat([]byte("k"), 3000), 0o644)
	os.WriteFile(filepath.Join(env, "initrd.img"), bytes.Repeat([]byte("i"), 3000), 0o644)

	a := cpio.NewArchive()
	a.File(deploy.ConfigFile, 0o600, []byte(`{"node":"bai-a01","token":"secret-a01"}`))
	var body bytes.Buffer
	a.WriteTo(&body)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != deploy.NodeConfigPath("52:54:00:20:30:20") {
			http.NotFound(w, r)
			return
		}
		w.Write(body.Bytes())
	}))
	defer srv.Close()

	out := filepath.Join(dir, "out.iso")
	base := []string{"iso", "--mode", "image", "-o", out}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{nil, 2, "--deploy-env DIR is required"},
		{[]string{"--deploy-env", env}, 2, "--server URL"},
		{[]string{"--deploy-env", env, "--server", "http://h/a b"}, 2, "--server"},
		{[]string{"--deploy-env", env, "--server", "ftp://h"}, 2, "--server"},
		{[]string{"--deploy-env", env, "--server", srv.URL, "--base", "x.iso"}, 2, "only for --mode autoinstall"},
		{[]string{"--deploy-env", env, "--server", srv.URL, "--kernel-args", "bainode.server=x"}, 2, "comes from --server"},
		{[]string{"--deploy-env", dir, "--server", srv.URL}, 1, "bainode deploy-env"},
		{[]string{"--deploy-env", env, "--server", srv.URL, "--example", "cluster", "--node", "ghost"}, 2, `no node "ghost"`},
		{[]string{"--deploy-env", env, "--server", srv.URL, "--example", "cluster", "--node", "bai-m1"}, 1, "404"},
		{[]string{"--deploy-env", env, "--server", srv.URL + "/"}, 0, "generic"},
	} {
		o, e, code := bainode(t, "", append(base, tc.args...)...)
		if code != tc.code || !strings.Contains(o+e, tc.out) {
			t.Errorf("bainode iso --mode image %s: exit %d, want %d; want output with %q, got:\n%s%s", strings.Join(tc.args, " "), code, tc.code, tc.out, o, e)
		}
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("generic ISO: %v, %v; want mode 0644", err, fi)
	}
	grub := isoFile(t, out, "boot/grub/grub.cfg")
	if want := " console=tty0 console=ttyS0,115200n8 bainode.server=" + srv.URL + "\n"; !strings.Contains(grub, want) {
		t.Errorf("grub.cfg lacks %q:\n%s", want, grub)
	}

	// Reproducible under SOURCE_DATE_EPOCH.
	var isos [2][]byte
	for i := range isos {
		cmd := exec.Command(bainodeBin, append(base, "--deploy-env", env, "--server", srv.URL)...)
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		isos[i], _ = os.ReadFile(out)
	}
	if !bytes.Equal(isos[0], isos[1]) {
		t.Error("the same inputs gave two different ISOs")
	}

	o, e, code := bainode(t, "", append(base, "--deploy-env", env, "--server", srv.URL, "--example", "cluster", "--node", "bai-a01")...)
	if code != 0 || !strings.Contains(o, "0600") {
		t.Fatalf("per-node ISO: exit %d\n%s%s", code, o, e)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("per-node ISO: mode %v, want 0600 (it holds the node's token)", fi.Mode().Perm())
	}
	var cfg string
	cpio.ReadArchive(strings.NewReader(isoFile(t, out, "boot/node.cpio")), func(e cpio.Entry) error {
		if e.Name == deploy.ConfigFile && e.Mode&0o777 == 0o600 {
			cfg = string(e.Data)
		}
		return nil
	})
	if !strings.Contains(cfg, "secret-a01") {
		t.Errorf("boot/node.cpio holds no 0600 %s with the node's config: %q", deploy.ConfigFile, cfg)
	}
}

// isoFile reads one file of an ISO through bainode's own reader.
func isoFile(t *testing.T, p, name string) string {
	t.Helper()
	m, err := iso.Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		if f.Path == name {
			b := make([]byte, f.Content.Size)
			src, err := os.Open(f.Content.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if _, err := src.ReadAt(b, f.Content.Offset); err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	t.Fatalf("%s: no %s", p, name)
	return ""
}
