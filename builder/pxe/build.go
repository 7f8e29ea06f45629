package pxe

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"

	"github.com/lablup/bainode/builder/autoinstall"
	"github.com/lablup/bainode/builder/spec"
)

// NodeInput is one node as the site renders it.
type NodeInput struct {
	Hostname, MAC, Target, Role string
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
	// are given. Needed only when a node boots install mode autoinstall.
	ISO            string
	Kernel, Initrd string
	// DeployEnv is the directory of 'bainode deploy-env' (vmlinuz,
	// initrd.img), needed only when a node boots install mode image.
	DeployEnv string
	// DeployArgs are added to the deploy kernel's command line (consoles).
	DeployArgs []string
	// Images maps a role to its baked image, as bainoded's --image: here
	// only which roles have one matters, as bainoded serves the images.
	Images map[string]string
	// Mode forces one install mode on every node; empty: image for a node
	// whose role has an image, autoinstall for the others.
	Mode    string
	Version string
}

// modes picks each node's install mode.
func (o Options) modes(nodes []NodeInput) ([]string, error) {
	for role := range o.Images {
		if !slices.Contains(spec.Roles, role) {
			return nil, fmt.Errorf("image for role %q: not a role; want one of %s", role, strings.Join(spec.Roles, ", "))
		}
	}
	if o.Mode != "" && o.Mode != Autoinstall && o.Mode != Image {
		return nil, fmt.Errorf("install mode %q: want %s or %s", o.Mode, Autoinstall, Image)
	}
	modes := make([]string, len(nodes))
	for i, n := range nodes {
		_, imaged := o.Images[n.Role]
		switch {
		case o.Mode == Image && !imaged:
			return nil, fmt.Errorf("node %s: install mode image, but role %s has no image (--image %s=FILE.raw.zst)", n.Hostname, n.Role, n.Role)
		case o.Mode != "":
			modes[i] = o.Mode
		case imaged:
			modes[i] = Image
		default:
			modes[i] = Autoinstall
		}
		what := map[string]string{Autoinstall: "the live-server ISO (--iso FILE)",
			Image: "the deploy environment (--deploy-env DIR from 'bainode deploy-env')"}[modes[i]]
		if modes[i] == Autoinstall && o.ISO == "" || modes[i] == Image && o.DeployEnv == "" {
			return nil, fmt.Errorf("node %s (role %s) boots install mode %s, which needs %s", n.Hostname, n.Role, modes[i], what)
		}
	}
	return modes, nil
}

// Build assembles the tree for nodes, each in its install mode; Seal and
// Write it next.
func Build(o Options, nodes []NodeInput) (*Tree, []Node, error) {
	modes, err := o.modes(nodes)
	if err != nil {
		return nil, nil, err
	}
	t := &Tree{}
	if err := t.AddLoaders(o.Loaders); err != nil {
		return nil, nil, err
	}
	var isoSize int64
	if slices.Contains(modes, Autoinstall) {
		if isoSize, err = t.addAutoinstall(o); err != nil {
			return nil, nil, err
		}
	}
	if slices.Contains(modes, Image) {
		if err := t.addDeployEnv(o.DeployEnv); err != nil {
			return nil, nil, err
		}
	}
	base := o.Server + "/pxe/" + IDPlaceholder + "/"
	var out []Node
	for i, n := range nodes {
		if n.MAC == "" {
			return nil, nil, fmt.Errorf("node %s has no mac: netboot picks a node's config by the MAC that booted (select nodes with --node)", n.Hostname)
		}
		var e Entry
		if modes[i] == Image {
			e, err = ImageEntry(o.Server, n.MAC, o.DeployArgs)
		} else {
			e, err = t.addSeed(n, base, isoSize)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("node %s: %w", n.Hostname, err)
		}
		out = append(out, Node{Hostname: n.Hostname, MAC: n.MAC, Entry: e})
	}
	if err := t.Configs(out); err != nil {
		return nil, nil, err
	}
	return t, out, nil
}

// addAutoinstall puts the ISO and casper's kernel and initrd into the
// tree and returns the ISO's size.
func (t *Tree) addAutoinstall(o Options) (int64, error) {
	st, err := os.Stat(o.ISO)
	if err != nil {
		return 0, fmt.Errorf("live-server ISO: %w", err)
	}
	if err := t.Add(ISOPath, File{Src: o.ISO}); err != nil {
		return 0, err
	}
	kernel, initrd := File{Src: o.Kernel}, File{Src: o.Initrd}
	if o.Kernel == "" || o.Initrd == "" {
		if o.Kernel != "" || o.Initrd != "" {
			return 0, fmt.Errorf("give both a kernel and an initrd, or neither to take casper's from the ISO")
		}
		if kernel.Data, err = isoFile(o.ISO, "/casper/vmlinuz"); err != nil {
			return 0, err
		}
		if initrd.Data, err = isoFile(o.ISO, "/casper/initrd"); err != nil {
			return 0, err
		}
	}
	if err := t.Add(Autoinstall+"/linux", kernel); err != nil {
		return 0, err
	}
	return st.Size(), t.Add(Autoinstall+"/initrd", initrd)
}

// addSeed puts an autoinstall node's seed into the tree and returns its
// entry.
func (t *Tree) addSeed(n NodeInput, base string, isoSize int64) (Entry, error) {
	e, err := AutoinstallEntry(n.Target, base, n.Hostname, isoSize)
	if err != nil {
		return Entry{}, err
	}
	ud, err := autoinstall.Wrap(n.Target, n.UserData, n.NetworkConfig)
	if err != nil {
		return Entry{}, err
	}
	seed := SeedDir(n.Hostname)
	// user-data holds password hashes and tokens: 0600 from its first byte.
	if err := t.Add(seed+"user-data", File{Data: ud, Mode: 0o600}); err != nil {
		return Entry{}, err
	}
	return e, t.Add(seed+"meta-data", File{Data: n.MetaData, Mode: 0o600})
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
