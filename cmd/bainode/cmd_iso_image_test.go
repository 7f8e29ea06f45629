package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	dir, env := fakeDeployEnv(t)

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

// TestIsoImageSelfContained writes a self-contained image-mode ISO: the
// image in deploy.MediumParts, byte for byte, and the node's config with
// the seed rendered from the site and the disk rule; no server anywhere.
// Wrong inputs are refused before anything is written.
func TestIsoImageSelfContained(t *testing.T) {
	dir, env := fakeDeployEnv(t)
	img := filepath.Join(dir, "aio.raw.zst")
	zst := append([]byte{0x28, 0xb5, 0x2f, 0xfd}, bytes.Repeat([]byte("z"), 70000)...)
	os.WriteFile(img, zst, 0o644)
	notZst := filepath.Join(dir, "plain.raw")
	os.WriteFile(notZst, []byte("raw bytes"), 0o644)

	out := filepath.Join(dir, "out.iso")
	base := []string{"iso", "--mode", "image", "-o", out, "--deploy-env", env, "--example", "vm-test"}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--image", img}, 2, "--node HOSTNAME is required"},
		{[]string{"--image", img, "--node", "bai-vm", "--server", "http://h"}, 2, "leave out --server"},
		{[]string{"--image", notZst, "--node", "bai-vm"}, 2, "not a zstd stream"},
		{[]string{"--image", img, "--node", "ghost"}, 2, `no node "ghost"`},
	} {
		o, e, code := bainode(t, "", append(base, tc.args...)...)
		if code != tc.code || !strings.Contains(o+e, tc.out) {
			t.Errorf("%s: exit %d, want %d; want output with %q, got:\n%s%s", strings.Join(tc.args, " "), code, tc.code, tc.out, o, e)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%s: an ISO was written", strings.Join(tc.args, " "))
		}
	}
	// A manifest that disagrees with the image.
	os.WriteFile(img+".json", []byte(`{"version":1,"output":{"path":"aio.raw.zst","sha256":"`+strings.Repeat("0", 64)+`","size":70004}}`), 0o644)
	if o, e, code := bainode(t, "", append(base, "--image", img, "--node", "bai-vm")...); code == 0 || !strings.Contains(o+e, "its bake manifest says") {
		t.Errorf("a manifest with another sha256: exit %d\n%s%s", code, o, e)
	}
	os.Remove(img + ".json")

	o, e, code := bainode(t, "", append(base, "--image", img, "--node", "bai-vm")...)
	if code != 0 || !strings.Contains(o, "self-contained") {
		t.Fatalf("exit %d\n%s%s", code, o, e)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 (the seed holds the node's secrets)", fi.Mode().Perm())
	}
	if grub := isoFile(t, out, "boot/grub/grub.cfg"); strings.Contains(grub, deploy.ServerArg) {
		t.Errorf("grub.cfg names a server:\n%s", grub)
	}
	var cfg deploy.Config
	cpio.ReadArchive(strings.NewReader(isoFile(t, out, "boot/node.cpio")), func(e cpio.Entry) error {
		if e.Name == deploy.ConfigFile {
			if err := json.Unmarshal(e.Data, &cfg); err != nil {
				t.Error(err)
			}
		}
		return nil
	})
	sum := sha256.Sum256(zst)
	if cfg.Node != "bai-vm" || cfg.Server != "" || cfg.Token != "" || cfg.Image.URL != "" ||
		cfg.Image.Medium != iso.DeployVolumeID || cfg.Image.SHA256 != hex.EncodeToString(sum[:]) || cfg.Image.Size != int64(len(zst)) {
		t.Errorf("config %+v", cfg)
	}
	var got []byte
	for _, p := range cfg.Image.Parts {
		got = append(got, isoFile(t, out, p)...)
	}
	if !bytes.Equal(got, zst) {
		t.Errorf("the parts %v do not hold the image", cfg.Image.Parts)
	}
	if md := string(cfg.SeedFiles["meta-data"]); !strings.Contains(md, "bai-vm") || strings.Contains(md, "seedfrom") {
		t.Errorf("meta-data %q: want the node's, without seedfrom", md)
	}
	if !strings.HasPrefix(string(cfg.SeedFiles["user-data"]), "#cloud-config") && !bytes.HasPrefix(cfg.SeedFiles["user-data"], []byte{0x1f, 0x8b}) {
		t.Errorf("user-data is not the node's cloud-config: %.40q", cfg.SeedFiles["user-data"])
	}

	// Reproducible under SOURCE_DATE_EPOCH, image and seed included.
	var isos [2][]byte
	for i := range isos {
		cmd := exec.Command(bainodeBin, append(base, "--image", img, "--node", "bai-vm")...)
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		isos[i], _ = os.ReadFile(out)
	}
	if !bytes.Equal(isos[0], isos[1]) {
		t.Error("the same inputs gave two different self-contained ISOs")
	}
}

// fakeDeployEnv is a temp dir holding stand-ins of a deploy environment
// (dir/env), for ISOs that are inspected, never booted; it needs the
// distribution's CD loaders.
func fakeDeployEnv(t *testing.T) (dir, env string) {
	t.Helper()
	if _, err := iso.FindCDLoaders("/"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %v", err)
		}
		t.Skip(err)
	}
	dir = t.TempDir()
	env = filepath.Join(dir, "env")
	os.Mkdir(env, 0o755)
	os.WriteFile(filepath.Join(env, "vmlinuz"), bytes.Repeat([]byte("k"), 3000), 0o644)
	os.WriteFile(filepath.Join(env, "initrd.img"), bytes.Repeat([]byte("i"), 3000), 0o644)
	return dir, env
}
