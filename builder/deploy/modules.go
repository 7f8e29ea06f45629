package deploy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"pault.ag/go/debian/deb"

	"github.com/lablup/bainode/builder/cpio"
)

// Modules are the drivers the deploy environment loads, by module name:
// disks and controllers, the usual server NICs, and the CD-ROM for the ISO
// mode. Their dependencies come along; names the kernel lacks are reported,
// since they may be built in.
var Modules = []string{
	// virtual machines
	"virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net",
	// disks
	"nvme", "ahci", "ata_piix", "sd_mod", "mpt3sas", "megaraid_sas",
	// CD-ROM and USB sticks (ISO mode: the self-contained image is read
	// off the medium)
	"sr_mod", "isofs", "xhci_pci", "ehci_pci", "uhci_hcd", "usb_storage", "uas",
	// NICs
	"e1000", "e1000e", "igb", "ixgbe", "i40e", "ice", "bnxt_en", "tg3",
}

// moduleTree is the /lib/modules/<version> of one kernel, read from a
// package or an initramfs: module name to file.
type moduleTree struct {
	version string
	files   map[string]moduleFile // by module name (dashes as underscores)
}

type moduleFile struct {
	rel  string // path below /lib/modules/<version>, uncompressed name (.ko)
	data []byte // uncompressed
}

var reModPath = regexp.MustCompile(`^(?:usr/)?lib/modules/([^/]+)/(kernel/.+\.ko)(\.xz|\.zst|\.gz)?$`)

func modName(file string) string {
	b := path.Base(file)
	b = b[:strings.Index(b, ".ko")]
	return strings.ReplaceAll(b, "-", "_")
}

func (t *moduleTree) add(name string, data []byte) error {
	m := reModPath.FindStringSubmatch(strings.TrimPrefix(path.Clean("/"+name), "/"))
	if m == nil {
		return nil
	}
	if t.version == "" {
		t.version = m[1]
	} else if t.version != m[1] {
		return fmt.Errorf("modules of two kernels: %s and %s", t.version, m[1])
	}
	var err error
	switch m[3] {
	case ".xz":
		data, err = readAllFrom(xz.NewReader(bytes.NewReader(data)))
	case ".zst":
		var d *zstd.Decoder
		if d, err = zstd.NewReader(bytes.NewReader(data)); err == nil {
			data, err = io.ReadAll(d)
			d.Close()
		}
	case ".gz":
		var g *gzip.Reader
		if g, err = gzip.NewReader(bytes.NewReader(data)); err == nil {
			data, err = io.ReadAll(g)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	t.files[modName(m[2])] = moduleFile{rel: m[2], data: data}
	return nil
}

func readAllFrom(r io.Reader, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// readModules reads the module tree of a linux-image .deb (or
// linux-modules .deb) or of an initramfs image (cpio, optionally
// compressed, possibly several archives back to back).
func readModules(paths ...string) (*moduleTree, error) {
	t := &moduleTree{files: map[string]moduleFile{}}
	for _, p := range paths {
		var err error
		if strings.HasSuffix(p, ".deb") {
			err = debFiles(p, func(name string, data []byte) error { return t.add(name, data) })
		} else {
			err = cpio.WalkInitramfs(p, func(e cpio.Entry) error {
				if e.Mode&cpio.ModeType != cpio.ModeFile {
					return nil
				}
				return t.add(e.Name, e.Data)
			})
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	if len(t.files) == 0 {
		return nil, fmt.Errorf("%s: no kernel modules", strings.Join(paths, ", "))
	}
	return t, nil
}

// debFiles calls each for every regular file of a .deb's data archive.
func debFiles(p string, each func(name string, data []byte) error) error {
	d, closer, err := deb.LoadFile(p)
	if err != nil {
		return err
	}
	defer closer()
	for {
		h, err := d.Data.Next()
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(d.Data)
		if err != nil {
			return err
		}
		if err := each(h.Name, data); err != nil {
			return err
		}
	}
}

// depends reads the "depends=" of a module's .modinfo section.
func depends(data []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	s := f.Section(".modinfo")
	if s == nil {
		return nil, errors.New("no .modinfo section")
	}
	b, err := s.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			var out []string
			for _, d := range strings.Split(string(v), ",") {
				out = append(out, strings.ReplaceAll(d, "-", "_"))
			}
			return out, nil
		}
	}
	return nil, nil
}

// pick returns the wanted modules and their dependencies in load order
// (dependencies first), and the wanted names the tree lacks.
func (t *moduleTree) pick(want []string) (order []string, missing []string, err error) {
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string) error
	visit = func(name string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", name)
		case 2:
			return nil
		}
		mf, ok := t.files[name]
		if !ok {
			return fmt.Errorf("module %s: a dependency that is missing from the kernel's modules", name)
		}
		state[name] = 1
		deps, err := depends(mf.data)
		if err != nil {
			return fmt.Errorf("module %s: %w", name, err)
		}
		sort.Strings(deps)
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, name)
		return nil
	}
	for _, w := range want {
		w = strings.ReplaceAll(w, "-", "_")
		if _, ok := t.files[w]; !ok {
			missing = append(missing, w)
			continue
		}
		if err := visit(w); err != nil {
			return nil, nil, err
		}
	}
	return order, missing, nil
}
