package main

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/autoinstall"
	"github.com/lablup/bainode/builder/iso"
	"github.com/lablup/bainode/builder/payload"
	"github.com/lablup/bainode/templates"

	"gopkg.in/yaml.v3"
)

func TestISOCommand(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.iso")
	spec := iso.Spec{
		VolumeID: "SRC",
		Files: []iso.File{
			{Path: "boot/grub/grub.cfg", Content: iso.Content{Data: []byte("menuentry x {\n\tlinux /casper/vmlinuz ---\n}\n")}},
			{Path: "boot/core.img", Content: iso.Content{Data: make([]byte, 4096)}},
			{Path: ".disk/info", Content: iso.Content{Data: []byte("x")}},
		},
		Catalog: "boot.catalog",
		Boot:    []iso.BootEntry{{Platform: iso.BIOS, Path: "boot/core.img", LoadSize: 4}},
		Epoch:   time.Unix(1700000000, 0),
	}
	if _, err := iso.Write(spec, src); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.iso")
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"iso", "--base", src, "-o", out}, 2, "--node HOSTNAME or --server URL"},
		{[]string{"iso", "--base", src, "-o", out, "--node", "bai-aio", "--server", "http://x"}, 2, "pick one"},
		{[]string{"iso", "--base", src, "-o", out, "--node", "ghost"}, 2, `no node "ghost"`},
		{[]string{"iso", "--mode", "image", "--base", src, "-o", out, "--node", "bai-aio"}, 2, "--mode"},
		{[]string{"iso", "--base", filepath.Join(dir, "none.iso"), "-o", out, "--node", "bai-aio"}, 1, "no such file"},
		{[]string{"iso", "--base", src, "-o", out, "--server", "http://10.0.0.2:8080"}, 0, "BIOS: boot/core.img"},
		{[]string{"iso", "--base", src, "-o", out, "--node", "bai-aio"}, 0, "system area: none"},
	} {
		o, e, code := bainode(t, "", tc.args...)
		if code != tc.code || !strings.Contains(o+e, tc.out) {
			t.Errorf("bainode %s: exit %d, want %d; want output with %q, got:\n%s%s", strings.Join(tc.args, " "), code, tc.code, tc.out, o, e)
		}
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("per-node ISO: %v, mode %v; want 0600 (it holds the node's secrets)", err, fi.Mode())
	}
	// A node's ISO installs it as its network boot would: the same
	// autoinstall, with its static address as the installed netplan.
	static := filepath.Join(dir, "static.iso")
	if o, e, code := bainode(t, "", "iso", "--base", src, "-o", static, "--example", "cluster", "--node", "bai-a01"); code != 0 {
		t.Fatalf("iso --node bai-a01: exit %d\n%s%s", code, o, e)
	}
	m, err := iso.Inspect(static)
	if err != nil {
		t.Fatal(err)
	}
	var ud []byte
	for _, f := range m.Files {
		if f.Path == iso.SeedDir+"/user-data" {
			ud = readContent(t, f.Content)
		}
	}
	want, err := autoinstall.Wrap("ubuntu-20.04", renderedFile(t, "cluster", "bai-a01", "user-data"), renderedFile(t, "cluster", "bai-a01", "network-config"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ud, want) || !bytes.Contains(ud, []byte("10.20.30.20/24")) {
		t.Errorf("bai-a01's ISO seed is not its autoinstall with its network:\n%s", ud)
	}
	cmd := exec.Command(bainodeBin, "iso", "--base", src, "-o", out, "--server", "http://x")
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=yesterday")
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "SOURCE_DATE_EPOCH") {
		t.Errorf("bad SOURCE_DATE_EPOCH: %v\n%s", err, b)
	}
}

// readContent reads a file of an inspected medium.
func readContent(t *testing.T, c iso.Content) []byte {
	t.Helper()
	f, err := os.Open(c.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, c.Size)
	if _, err := f.ReadAt(b, c.Offset); err != nil {
		t.Fatal(err)
	}
	return b
}

// renderedFile is what bainode render writes for a node of an example.
func renderedFile(t *testing.T, example, node, name string) []byte {
	t.Helper()
	out := t.TempDir()
	if o, e, code := bainode(t, "", "render", "--example", example, "--node", node, "-o", out); code != 0 {
		t.Fatalf("render: exit %d\n%s%s", code, o, e)
	}
	b, err := os.ReadFile(filepath.Join(out, node, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestISOCommandPayload: --payload puts an air-gapped node's payload on
// its ISO, byte for byte, and the late-command that copies it to the
// installed system into its autoinstall; it is refused where it cannot
// help.
func TestISOCommandPayload(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.iso")
	if _, err := iso.Write(iso.Spec{
		VolumeID: "SRC",
		Files: []iso.File{
			{Path: "boot/grub/grub.cfg", Content: iso.Content{Data: []byte("menuentry x {\n\tlinux /casper/vmlinuz ---\n}\n")}},
			{Path: "boot/core.img", Content: iso.Content{Data: make([]byte, 4096)}},
		},
		Catalog: "boot.catalog",
		Boot:    []iso.BootEntry{{Platform: iso.BIOS, Path: "boot/core.img", LoadSize: 4}},
		Epoch:   time.Unix(1700000000, 0),
	}, src); err != nil {
		t.Fatal(err)
	}
	pl := filepath.Join(dir, "payload.img")
	if err := payload.Build(t.Context(), pl, nil, nil, payload.Options{}); err != nil {
		t.Fatal(err)
	}
	site, _ := fs.ReadFile(templates.FS, "examples/single-node.yaml")
	gapped := filepath.Join(dir, "gapped.yaml")
	os.WriteFile(gapped, append(site, "artifacts: payload\n"...), 0o644)
	out := filepath.Join(dir, "out.iso")
	base := []string{"iso", "--base", src, "-o", out}
	for _, tc := range []struct {
		args []string
		out  string
	}{
		{[]string{"--payload", pl, "--server", "http://x"}, "only with --node"},
		{[]string{"--payload", pl, "--example", "single-node", "--node", "bai-aio"}, `artifacts is "online"`},
		{[]string{"--payload", src, "-c", gapped, "--node", "bai-aio"}, "not a payload image"},
		{[]string{"--mode", "image", "--payload", pl}, "only for --mode autoinstall"},
	} {
		o, e, code := bainode(t, "", append(base, tc.args...)...)
		if code != 2 || !strings.Contains(o+e, tc.out) {
			t.Errorf("%s: exit %d, want 2 and %q:\n%s%s", strings.Join(tc.args, " "), code, tc.out, o, e)
		}
	}
	if _, e, _ := bainode(t, "", append(base, "-c", gapped, "--node", "bai-aio")...); !strings.Contains(e, "--payload") {
		t.Errorf("an air-gapped node's ISO without --payload: no warning:\n%s", e)
	}
	if o, e, code := bainode(t, "", append(base, "--payload", pl, "-c", gapped, "--node", "bai-aio")...); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, o, e)
	}
	m, err := iso.Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(pl)
	want, _ := os.ReadFile(pl)
	var got, ud []byte
	for _, f := range m.Files {
		switch f.Path {
		case iso.PayloadParts(st.Size())[0]:
			got = readContent(t, f.Content)
		case iso.SeedDir + "/user-data":
			ud = readContent(t, f.Content)
		}
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s on the ISO is not the payload image", iso.PayloadParts(st.Size())[0])
	}
	var doc struct {
		Autoinstall struct {
			LateCommands []string `yaml:"late-commands"`
		} `yaml:"autoinstall"`
	}
	if err := yaml.Unmarshal(ud, &doc); err != nil {
		t.Fatal(err)
	}
	if c := doc.Autoinstall.LateCommands; len(c) != 1 || c[0] != iso.PayloadCommand(st.Size()) ||
		!strings.Contains(c[0], "/cdrom/bainode/payload.000") || !strings.Contains(c[0], "/target"+payload.InstalledFile) {
		t.Errorf("late-commands %q: want the payload copy to /target%s", c, payload.InstalledFile)
	}
}
