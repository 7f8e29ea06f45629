package pxe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImageConfigsGolden renders a mixed site: the manager in autoinstall
// mode, two agents (one MAC in dash notation) in image mode.
func TestImageConfigsGolden(t *testing.T) {
	base := "http://10.20.30.1:8080/pxe/" + IDPlaceholder + "/"
	m, err := AutoinstallEntry("ubuntu-20.04", base, "bai-m1", 1_480_370_176)
	if err != nil {
		t.Fatal(err)
	}
	nodes := []Node{{Hostname: "bai-m1", MAC: "52:54:00:20:30:10", Entry: m}}
	for _, n := range []struct{ host, mac string }{{"bai-a01", "52:54:00:20:30:20"}, {"bai-a02", "52-54-00-20-30-22"}} {
		e, err := ImageEntry("http://10.20.30.1:8080", n.mac, []string{"console=ttyS0,115200"})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, Node{Hostname: n.host, MAC: n.mac, Entry: e})
	}
	var tr Tree
	if err := tr.Configs(nodes); err != nil {
		t.Fatal(err)
	}
	for _, p := range tr.Paths() {
		goldenFile(t, "image/"+p, tr.Files[p].Data)
	}
	// Every loader gets the same command line; only iPXE adds the node's
	// initrd over HTTP, and nothing points at a token.
	url := "http://10.20.30.1:8080/deploy/52-54-00-20-30-22/node.cpio"
	cmdline := "bainode.config=" + url + " console=ttyS0,115200 ---"
	for path, want := range map[string]string{
		"pxelinux.cfg/01-52-54-00-20-30-22": "APPEND initrd=image/initrd.img " + cmdline + "\n",
		"grub/grub.cfg":                     "linux /image/vmlinuz " + cmdline + "\n    initrd /image/initrd.img\n",
		"ipxe/01-52-54-00-20-30-22.ipxe":    "kernel ../image/vmlinuz initrd=initrd initrd=node " + cmdline + "\ninitrd --name initrd ../image/initrd.img\n# The node's own initrd comes from bainoded, never from the tree. bainoded\n# refuses it (409) once the node is deployed: then boot the next device.\ninitrd --name node " + url + " || exit\n",
	} {
		if got := string(tr.Files[path].Data); !strings.Contains(got, want) {
			t.Errorf("%s lacks %q:\n%s", path, want, got)
		}
	}
}

// buildInputs are a fake ISO, kernel and loaders, and a deploy
// environment: Build copies them and checks only that they exist.
func buildInputs(t *testing.T) (Options, []NodeInput) {
	dir := t.TempDir()
	file := func(name string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	o := Options{Server: "http://10.20.30.1:8080", ISO: file("live.iso"), Kernel: file("linux"), Initrd: file("initrd"),
		Loaders:   Loaders{PXELinux: file("pxelinux.0"), LDLinux: file("ldlinux.c32"), Shim: file("shim"), GRUB: file("grub")},
		DeployEnv: filepath.Dir(file("env/vmlinuz")), Images: map[string]string{"agent": "agent.raw.zst"}, Version: "test"}
	file("env/initrd.img")
	ud, err := os.ReadFile("testdata/cloud-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := []NodeInput{
		{Hostname: "bai-m1", MAC: "52:54:00:20:30:10", Target: "ubuntu-20.04", Role: "manager", UserData: ud},
		{Hostname: "bai-a01", MAC: "52:54:00:20:30:20", Target: "ubuntu-20.04", Role: "agent", UserData: ud},
	}
	return o, in
}

func TestBuildMixed(t *testing.T) {
	o, in := buildInputs(t)
	tr, nodes, err := Build(o, in)
	if err != nil {
		t.Fatal(err)
	}
	if nodes[0].Entry.Name != Autoinstall || nodes[1].Entry.Name != Image {
		t.Errorf("modes %s, %s; want autoinstall for the manager, image for the agent", nodes[0].Entry.Name, nodes[1].Entry.Name)
	}
	for _, p := range []string{"image/vmlinuz", "image/initrd.img", "autoinstall/linux", ISOPath, "autoinstall/seed/bai-m1/user-data"} {
		if _, ok := tr.Files[p]; !ok {
			t.Errorf("no %s in the tree", p)
		}
	}
	for p := range tr.Files {
		if strings.Contains(p, "bai-a01") {
			t.Errorf("image-mode node has a file in the tree: %s", p)
		}
	}

	// Only image mode: no ISO needed, none in the tree.
	o.ISO, o.Kernel, o.Initrd = "", "", ""
	tr, _, err = Build(o, in[1:])
	if err != nil {
		t.Fatal(err)
	}
	for p := range tr.Files {
		if strings.HasPrefix(p, Autoinstall+"/") {
			t.Errorf("image-only tree holds %s", p)
		}
	}
	// --mode autoinstall: no deploy environment needed.
	o, in = buildInputs(t)
	o.Mode, o.DeployEnv = Autoinstall, ""
	if _, nodes, err = Build(o, in); err != nil || nodes[1].Entry.Name != Autoinstall {
		t.Errorf("forced autoinstall: %v", err)
	}
}

func TestBuildRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Options, []NodeInput)
		want string
	}{
		{"unknown role", func(o *Options, _ []NodeInput) { o.Images["gpu"] = "gpu.raw.zst" },
			`image for role "gpu": not a role; want one of manager, agent, storage, all-in-one`},
		{"no kernel in deploy env", func(o *Options, _ []NodeInput) { os.Remove(filepath.Join(o.DeployEnv, "vmlinuz")) },
			"deploy environment DIR: no vmlinuz (write it with 'bainode deploy-env -o DIR')"},
		{"no initrd in deploy env", func(o *Options, _ []NodeInput) { os.Remove(filepath.Join(o.DeployEnv, "initrd.img")) },
			"deploy environment DIR: no initrd.img (write it with 'bainode deploy-env -o DIR')"},
		{"mode image, role without image", func(o *Options, _ []NodeInput) { o.Mode = Image },
			"node bai-m1: install mode image, but role manager has no image (--image manager=FILE.raw.zst)"},
		{"autoinstall without ISO", func(o *Options, _ []NodeInput) { o.ISO = "" },
			"node bai-m1 (role manager) boots install mode autoinstall, which needs the live-server ISO (--iso FILE)"},
		{"image without deploy env", func(o *Options, _ []NodeInput) { o.DeployEnv = "" },
			"node bai-a01 (role agent) boots install mode image, which needs the deploy environment (--deploy-env DIR from 'bainode deploy-env')"},
		{"bad mode", func(o *Options, _ []NodeInput) { o.Mode = "netinst" },
			`install mode "netinst": want autoinstall or image`},
		{"image node without MAC", func(_ *Options, in []NodeInput) { in[1].MAC = "" },
			"node bai-a01 has no mac: netboot picks a node's config by the MAC that booted (select nodes with --node)"},
	} {
		o, in := buildInputs(t)
		c.edit(&o, in)
		_, _, err := Build(o, in)
		got := ""
		if err != nil {
			got = err.Error()
			if o.DeployEnv != "" {
				got = strings.ReplaceAll(got, o.DeployEnv, "DIR")
			}
		}
		if got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}
