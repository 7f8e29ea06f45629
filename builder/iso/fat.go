package iso

import (
	"encoding/binary"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ESPFile is one file of an EFI system partition image: its 8.3 path
// (EFI/BOOT/BOOTX64.EFI) and the host file it is copied from, byte for byte.
type ESPFile struct {
	Path string
	Src  string
}

// WriteESP writes a FAT12 image holding files (in directories made as
// needed) to out, with every timestamp at epoch and a volume serial taken
// from the content: the same inputs give the same bytes. FAT12 is what
// the UEFI spec requires firmware to read on removable media, and is
// enough up to 16 MiB. Names are 8.3, upper case (FAT is case-blind).
func WriteESP(files []ESPFile, out string, epoch time.Time) error {
	const sector, spc, rootEntries = 512, 8, 64 // 4 KiB clusters
	const cluster = sector * spc
	type node struct {
		name     string // 8.3, upper case
		dir      bool
		data     []byte
		children []*node
		first    uint16 // first cluster
		clusters int
	}
	root := &node{dir: true}
	find := func(parent *node, name string) *node {
		for _, c := range parent.children {
			if c.name == name {
				return c
			}
		}
		return nil
	}
	for _, f := range files {
		parts := strings.Split(strings.ToUpper(path.Clean(f.Path)), "/")
		cur := root
		for i, p := range parts {
			if _, err := name83(p); err != nil {
				return fmt.Errorf("esp: %s: %w", f.Path, err)
			}
			n := find(cur, p)
			last := i == len(parts)-1
			switch {
			case n == nil:
				n = &node{name: p, dir: !last}
				cur.children = append(cur.children, n)
			case last || !n.dir:
				return fmt.Errorf("esp: %s: listed twice or under a file", f.Path)
			}
			cur = n
		}
		b, err := os.ReadFile(f.Src)
		if err != nil {
			return fmt.Errorf("esp: %w", err)
		}
		cur.data = b
	}
	// Lay out clusters depth first, children sorted by name.
	next := 2
	var layout func(n *node)
	var order []*node
	layout = func(n *node) {
		sort.Slice(n.children, func(i, j int) bool { return n.children[i].name < n.children[j].name })
		for _, c := range n.children {
			size := len(c.data)
			if c.dir {
				size = (2 + len(c.children)) * 32
			}
			c.clusters = max(1, (size+cluster-1)/cluster)
			c.first = uint16(next)
			next += c.clusters
			order = append(order, c)
		}
		for _, c := range n.children {
			if c.dir {
				layout(c)
			}
		}
	}
	layout(root)
	if len(root.children) > rootEntries-1 {
		return fmt.Errorf("esp: more than %d entries in the root", rootEntries-1)
	}
	dataClusters := next - 2 + 16 // some slack, as a partition tool expects free space
	if dataClusters >= 4085 {
		return fmt.Errorf("esp: %d clusters do not fit FAT12", dataClusters)
	}
	fatSectors := ((dataClusters+2)*3/2 + sector) / sector
	rootSectors := rootEntries * 32 / sector
	dataStart := 1 + 2*fatSectors + rootSectors
	total := dataStart + dataClusters*spc
	img := make([]byte, total*sector)

	// Boot sector: a BPB and a stub that says it is not bootable.
	b := img[:sector]
	copy(b, []byte{0xeb, 0x3c, 0x90})
	copy(b[3:], "BAINODE ")
	binary.LittleEndian.PutUint16(b[11:], sector)
	b[13] = spc
	binary.LittleEndian.PutUint16(b[14:], 1) // reserved sectors
	b[16] = 2                                // FATs
	binary.LittleEndian.PutUint16(b[17:], rootEntries)
	if total < 0x10000 {
		binary.LittleEndian.PutUint16(b[19:], uint16(total))
	} else {
		binary.LittleEndian.PutUint32(b[32:], uint32(total))
	}
	b[21] = 0xf8
	binary.LittleEndian.PutUint16(b[22:], uint16(fatSectors))
	binary.LittleEndian.PutUint16(b[24:], 32) // sectors per track
	binary.LittleEndian.PutUint16(b[26:], 64) // heads
	b[36] = 0x80
	b[38] = 0x29
	copy(b[43:], "ESP        ")
	copy(b[54:], "FAT12   ")
	copy(b[62:], []byte{0xcd, 0x18}) // int 18h: try the next boot device
	b[510], b[511] = 0x55, 0xaa

	// FAT: entries 0 and 1 reserved, then each chain contiguous.
	fat := make([]uint16, dataClusters+2)
	fat[0], fat[1] = 0xff8, 0xfff
	for _, n := range order {
		for i := 0; i < n.clusters; i++ {
			c := int(n.first) + i
			if i == n.clusters-1 {
				fat[c] = 0xfff
			} else {
				fat[c] = uint16(c + 1)
			}
		}
	}
	fatBytes := make([]byte, fatSectors*sector)
	for i, v := range fat {
		o := i * 3 / 2
		if i%2 == 0 {
			fatBytes[o] = byte(v)
			fatBytes[o+1] = fatBytes[o+1]&0xf0 | byte(v>>8)&0x0f
		} else {
			fatBytes[o] = fatBytes[o]&0x0f | byte(v<<4)
			fatBytes[o+1] = byte(v >> 4)
		}
	}
	copy(img[sector:], fatBytes)
	copy(img[(1+fatSectors)*sector:], fatBytes)

	date, tod := fatTime(epoch)
	entry := func(dst []byte, name [11]byte, attr byte, first uint16, size uint32) {
		copy(dst, name[:])
		dst[11] = attr
		for _, o := range []int{14, 22} {
			binary.LittleEndian.PutUint16(dst[o:], tod)
		}
		for _, o := range []int{16, 18, 24} {
			binary.LittleEndian.PutUint16(dst[o:], date)
		}
		binary.LittleEndian.PutUint16(dst[26:], first)
		binary.LittleEndian.PutUint32(dst[28:], size)
	}
	clusterAt := func(c uint16) []byte {
		o := (dataStart + (int(c)-2)*spc) * sector
		return img[o:]
	}
	var fill func(n *node, dst []byte, parent uint16)
	fill = func(n *node, dst []byte, parent uint16) {
		var i int
		if n != root {
			entry(dst[0:], [11]byte{'.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}, 0x10, n.first, 0)
			entry(dst[32:], [11]byte{'.', '.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}, 0x10, parent, 0)
			i = 2
		} else {
			label := [11]byte{}
			copy(label[:], "ESP        ")
			entry(dst, label, 0x08, 0, 0)
			i = 1
		}
		for _, c := range n.children {
			nm, _ := name83(c.name)
			if c.dir {
				entry(dst[i*32:], nm, 0x10, c.first, 0)
				fill(c, clusterAt(c.first), n.first) // the root's is 0, as ".." wants
			} else {
				entry(dst[i*32:], nm, 0x20, c.first, uint32(len(c.data)))
				copy(clusterAt(c.first), c.data)
			}
			i++
		}
	}
	fill(root, img[(1+2*fatSectors)*sector:], 0)
	serial := hashOf(img)
	copy(img[39:43], serial[:4])
	return writeFileAtomic(out, img, 0o644)
}

// name83 turns NAME.EXT into the 11 bytes of a directory entry.
func name83(s string) ([11]byte, error) {
	var n [11]byte
	base, ext, _ := strings.Cut(s, ".")
	if base == "" || len(base) > 8 || len(ext) > 3 || strings.Contains(ext, ".") {
		return n, fmt.Errorf("%q is not an 8.3 name", s)
	}
	for _, r := range base + ext {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return n, fmt.Errorf("%q is not an 8.3 name (A-Z 0-9 _ -)", s)
		}
	}
	copy(n[:], fmt.Sprintf("%-8s%-3s", base, ext))
	return n, nil
}

// fatTime is t as a FAT date and time (local time in FAT; bainode uses
// UTC), clamped to FAT's 1980..2107.
func fatTime(t time.Time) (date, tod uint16) {
	t = t.UTC()
	if t.Year() < 1980 {
		return 0x21, 0 // 1980-01-01
	}
	date = uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day())
	tod = uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2)
	return date, tod
}

// writeFileAtomic writes b to p through a temp file created with mode.
func writeFileAtomic(p string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".bainode-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}
