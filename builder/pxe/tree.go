package pxe

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/template"

	"github.com/lablup/bainode/builder/inventory"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var templates = template.Must(template.New("").Option("missingkey=error").
	Funcs(template.FuncMap{"grubWord": grubWord}).ParseFS(templateFS, "templates/*.tmpl"))

// Node is one machine in the tree and the entry it boots.
type Node struct {
	Hostname string
	MAC      string // any notation; the tree uses aa:bb:cc:dd:ee:ff
	Entry    Entry
}

// File is one file of the tree: bytes, or a file on this host to copy.
type File struct {
	Data []byte
	Src  string
	Mode os.FileMode // 0644 unless set; 0600 for files holding secrets
}

// Tree is a netboot tree before it is written: every file by its path.
type Tree struct {
	Files map[string]File
}

// Add puts f at path, refusing a second file at the same path.
func (t *Tree) Add(path string, f File) error {
	if !safePath(path) {
		return fmt.Errorf("tree path %q is not a clean relative path", path)
	}
	if t.Files == nil {
		t.Files = map[string]File{}
	}
	if _, dup := t.Files[path]; dup {
		return fmt.Errorf("tree path %s: two files", path)
	}
	if f.Mode == 0 {
		f.Mode = 0o644
	}
	t.Files[path] = f
	return nil
}

// Paths are the tree's files in order.
func (t *Tree) Paths() []string {
	p := make([]string, 0, len(t.Files))
	for k := range t.Files {
		p = append(p, k)
	}
	sort.Strings(p)
	return p
}

// Configs renders the boot loader configs for nodes into t: pxelinux.cfg/
// (BIOS), grub/grub.cfg (UEFI, shim and signed GRUB) and ipxe/.
func (t *Tree) Configs(nodes []Node) error {
	type view struct {
		Node     Node
		Entry    Entry
		RAMSteps []struct{}
	}
	views := make([]view, 0, len(nodes))
	seen := map[string]string{}
	for _, n := range nodes {
		mac, err := inventory.NormalizeMAC(n.MAC)
		if err != nil {
			return fmt.Errorf("node %s: mac %q: %v", n.Hostname, n.MAC, err)
		}
		if inventory.CheckHostname(n.Hostname) != nil {
			return fmt.Errorf("node %q: not a hostname", n.Hostname)
		}
		if other, dup := seen[mac]; dup {
			return fmt.Errorf("nodes %s and %s share the MAC %s", other, n.Hostname, mac)
		}
		seen[mac] = n.Hostname
		if err := n.Entry.Validate(); err != nil {
			return fmt.Errorf("node %s: %w", n.Hostname, err)
		}
		n.MAC = mac
		v := view{Node: n, Entry: n.Entry, RAMSteps: make([]struct{}, (n.Entry.MinRAMMiB+255)/256)}
		views = append(views, v)
	}
	add := func(path, tmpl string, data any) error {
		var b bytes.Buffer
		if err := templates.ExecuteTemplate(&b, tmpl, data); err != nil {
			return err
		}
		return t.Add(path, File{Data: b.Bytes()})
	}
	for _, v := range views {
		name := "01-" + strings.ReplaceAll(v.Node.MAC, ":", "-")
		if err := add("pxelinux.cfg/"+name, "pxelinux-node.tmpl", v); err != nil {
			return err
		}
		if err := add("ipxe/"+name+".ipxe", "ipxe-node.tmpl", v); err != nil {
			return err
		}
	}
	if err := add("pxelinux.cfg/default", "pxelinux-default.tmpl", nil); err != nil {
		return err
	}
	if err := add("ipxe/boot.ipxe", "ipxe-boot.tmpl", nil); err != nil {
		return err
	}
	return add("grub/grub.cfg", "grub.tmpl", map[string]any{"Nodes": views})
}

// ID is the tree's content address: a hash of every path, mode and content,
// and of bainode's version. Files are read to hash them.
func (t *Tree) ID(version string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "bainode-pxe %q\n", version)
	for _, p := range t.Paths() {
		f := t.Files[p]
		fh := sha256.New()
		if f.Src != "" {
			r, err := os.Open(f.Src)
			if err != nil {
				return "", err
			}
			_, err = io.Copy(fh, r)
			r.Close()
			if err != nil {
				return "", fmt.Errorf("%s: %w", f.Src, err)
			}
		} else {
			fh.Write(f.Data)
		}
		fmt.Fprintf(h, "%q %o %x\n", p, f.Mode, fh.Sum(nil))
	}
	return hex.EncodeToString(h.Sum(nil))[:20], nil
}
