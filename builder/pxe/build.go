package pxe

import (
	"fmt"
	"io"
	"os"

	diskfs "github.com/diskfs/go-diskfs"
)

// NodeInput is one node as the site renders it.
type NodeInput struct {
	Hostname, MAC, Target string
	// The node's NoCloud documents (render.Files).
	UserData, MetaData, NetworkConfig []byte
}

// Options say where the tree's parts come from and how machines reach it.
type Options struct {
	// Server is how machines reach bainoded (http://HOST[:PORT]); the tree
	// is at Server/pxe/ID/.
	Server  string
	Loaders Loaders
	// ISO is the pinned Ubuntu live-server ISO: served to casper, and the
	// source of casper/vmlinuz and casper/initrd unless Kernel and Initrd
	// are given.
	ISO            string
	Kernel, Initrd string
	Version        string
}

// Build assembles the tree for nodes in autoinstall mode; Seal and Write
// it next.
func Build(o Options, nodes []NodeInput) (*Tree, []Node, error) {
	t := &Tree{}
	if err := t.AddLoaders(o.Loaders); err != nil {
		return nil, nil, err
	}
	st, err := os.Stat(o.ISO)
	if err != nil {
		return nil, nil, fmt.Errorf("live-server ISO: %w", err)
	}
	if err := t.Add(ISOPath, File{Src: o.ISO}); err != nil {
		return nil, nil, err
	}
	kernel, initrd := File{Src: o.Kernel}, File{Src: o.Initrd}
	if o.Kernel == "" || o.Initrd == "" {
		if o.Kernel != "" || o.Initrd != "" {
			return nil, nil, fmt.Errorf("give both a kernel and an initrd, or neither to take casper's from the ISO")
		}
		if kernel.Data, err = isoFile(o.ISO, "/casper/vmlinuz"); err != nil {
			return nil, nil, err
		}
		if initrd.Data, err = isoFile(o.ISO, "/casper/initrd"); err != nil {
			return nil, nil, err
		}
	}
	if err := t.Add(Autoinstall+"/linux", kernel); err != nil {
		return nil, nil, err
	}
	if err := t.Add(Autoinstall+"/initrd", initrd); err != nil {
		return nil, nil, err
	}
	base := o.Server + "/pxe/" + IDPlaceholder + "/"
	var out []Node
	for _, n := range nodes {
		if n.MAC == "" {
			return nil, nil, fmt.Errorf("node %s has no mac: netboot picks a node's config by the MAC that booted (select nodes with --node)", n.Hostname)
		}
		e, err := AutoinstallEntry(n.Target, base, n.Hostname, st.Size())
		if err != nil {
			return nil, nil, fmt.Errorf("node %s: %w", n.Hostname, err)
		}
		ud, err := WrapAutoinstall(n.Target, n.UserData, n.NetworkConfig)
		if err != nil {
			return nil, nil, fmt.Errorf("node %s: %w", n.Hostname, err)
		}
		seed := SeedDir(n.Hostname)
		// user-data holds password hashes and tokens: 0600 from its first byte.
		if err := t.Add(seed+"user-data", File{Data: ud, Mode: 0o600}); err != nil {
			return nil, nil, err
		}
		if err := t.Add(seed+"meta-data", File{Data: n.MetaData, Mode: 0o600}); err != nil {
			return nil, nil, err
		}
		out = append(out, Node{Hostname: n.Hostname, MAC: n.MAC, Entry: e})
	}
	if err := t.Configs(out); err != nil {
		return nil, nil, err
	}
	return t, out, nil
}

// isoFile reads one file of an ISO9660 image.
func isoFile(iso, path string) ([]byte, error) {
	d, err := diskfs.Open(iso, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", iso, err)
	}
	defer d.Close()
	fs, err := d.GetFilesystem(0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", iso, err)
	}
	f, err := fs.OpenFile(path, os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w (not an Ubuntu live-server ISO?)", iso, path, err)
	}
	defer f.Close()
	return io.ReadAll(f)
}
