package iso

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
)

// readTree lists a volume's files from its directory records and Rock
// Ridge entries. bainode reads trees itself: go-diskfs v1.9.4 returns an
// empty name for a Rock Ridge ".disk" it wrote, and Ubuntu's /.disk/info
// must survive a remaster.
func readTree(f *os.File, src string) ([]File, map[uint32]File, error) {
	pvd, err := readBlock(f, 16)
	if err != nil {
		return nil, nil, err
	}
	root := pvd[156 : 156+34]
	var out []File
	byLBA := map[uint32]File{}
	seen := map[uint32]bool{}
	var walk func(dir string, lba, size uint32, depth int) error
	walk = func(dir string, lba, size uint32, depth int) error {
		if seen[lba] || depth > 64 {
			return fmt.Errorf("directory %s: loop or too deep", dir)
		}
		seen[lba] = true
		buf := make([]byte, (int(size)+Block-1)/Block*Block)
		if _, err := f.ReadAt(buf, int64(lba)*Block); err != nil {
			return fmt.Errorf("read directory %s: %w", dir, err)
		}
		for off := 0; off < len(buf); {
			n := int(buf[off])
			if n == 0 {
				off = (off/Block + 1) * Block
				continue
			}
			if off+n > len(buf) || n < 34 {
				return fmt.Errorf("directory %s: bad record at byte %d", dir, off)
			}
			rec := buf[off : off+n]
			off += n
			nameLen := int(rec[32])
			raw := string(rec[33 : 33+nameLen])
			if nameLen == 1 && (raw == "\x00" || raw == "\x01") {
				continue
			}
			su := 33 + nameLen
			if nameLen%2 == 0 {
				su++
			}
			rr := rockRidge{}
			if su < n {
				if err := rr.parse(f, rec[su:]); err != nil {
					return fmt.Errorf("directory %s: %w", dir, err)
				}
			}
			name := rr.name
			if name == "" {
				name = strings.ToLower(strings.TrimSuffix(strings.Split(raw, ";")[0], "."))
			}
			p := path.Join(dir, name)
			flags := rec[25]
			if flags&0x80 != 0 {
				return fmt.Errorf("%s: multi-extent files (4 GiB and more) are not supported", p)
			}
			loc := binary.LittleEndian.Uint32(rec[2:6])
			sz := binary.LittleEndian.Uint32(rec[10:14])
			file := File{Path: p, ModTime: recTime(rec[18:25]), Mode: rr.mode & fs.ModePerm}
			isDir := flags&2 != 0
			switch {
			case rr.isLink:
				file.Link = rr.link
			case isDir:
				file.Dir = true
			default:
				file.Content = Content{Path: src, Offset: int64(loc) * Block, Size: int64(sz)}
			}
			if !rr.hasMode {
				file.Mode = 0o444
				if isDir {
					file.Mode = 0o555
				}
			}
			out = append(out, file)
			if isDir && !rr.isLink {
				if err := walk(p, loc, sz, depth+1); err != nil {
					return err
				}
			} else if !rr.isLink && sz > 0 {
				byLBA[loc] = file
			}
		}
		return nil
	}
	err = walk(".", binary.LittleEndian.Uint32(root[2:6]), binary.LittleEndian.Uint32(root[10:14]), 0)
	return out, byLBA, err
}

type rockRidge struct {
	name    string
	mode    fs.FileMode
	hasMode bool
	isLink  bool
	link    string
	linkEnd bool // the last SL component closed
}

func (r *rockRidge) parse(f *os.File, b []byte) error {
	for len(b) >= 4 {
		n := int(b[2])
		if n < 4 || n > len(b) {
			return nil
		}
		e := b[:n]
		switch string(e[:2]) {
		case "NM":
			if e[4]&6 == 0 {
				r.name += string(e[5:])
			}
		case "PX":
			if n >= 12 {
				m := binary.LittleEndian.Uint32(e[4:8])
				r.mode, r.hasMode = fs.FileMode(m&0o777), true
				if m&0o170000 == 0o120000 {
					r.isLink = true
				}
			}
		case "SL":
			r.isLink = true
			r.sl(e[5:])
		case "CE":
			if n >= 28 {
				lba := binary.LittleEndian.Uint32(e[4:8])
				off := binary.LittleEndian.Uint32(e[12:16])
				size := binary.LittleEndian.Uint32(e[20:24])
				area := make([]byte, size)
				if _, err := f.ReadAt(area, int64(lba)*Block+int64(off)); err != nil {
					return err
				}
				if err := r.parse(f, area); err != nil {
					return err
				}
			}
		case "ST":
			return nil
		}
		b = b[n:]
	}
	return nil
}

// sl appends the components of one SL entry to the link target.
func (r *rockRidge) sl(b []byte) {
	for len(b) >= 2 {
		flags, n := b[0], int(b[1])
		if 2+n > len(b) {
			return
		}
		var part string
		switch {
		case flags&2 != 0:
			part = "."
		case flags&4 != 0:
			part = ".."
		case flags&8 != 0:
			part = "/"
		default:
			part = string(b[2 : 2+n])
		}
		if r.link != "" && r.linkEnd && !strings.HasSuffix(r.link, "/") {
			r.link += "/"
		}
		r.link += part
		r.linkEnd = flags&1 == 0
		b = b[2+n:]
	}
}

// recTime reads a 7-byte directory record time.
func recTime(b []byte) time.Time {
	return time.Date(1900+int(b[0]), time.Month(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5]), 0,
		time.FixedZone("", int(int8(b[6]))*15*60)).UTC()
}
