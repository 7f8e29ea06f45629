package cpio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// A cpio archive in the "newc" format, the one the kernel unpacks as an
// initramfs. Written archives are reproducible: entries sorted by name,
// owner root, mtime 0, inode numbers by position.

// Entry is one archive member. Mode holds the file type bits too.
type Entry struct {
	Name     string
	Mode     uint32 // e.g. ModeDir|0o755
	Data     []byte // file contents, or the target of a symlink
	DevMajor uint32 // for device nodes
	DevMinor uint32
}

// File type bits of a cpio mode.
const (
	ModeDir     = 0o040000
	ModeFile    = 0o100000
	ModeSymlink = 0o120000
	ModeChar    = 0o020000
	ModeType    = 0o170000 // mask of the type bits
)

// Archive collects entries; adding a file adds its missing parent
// directories.
type Archive struct {
	entries map[string]Entry
}

// NewArchive returns an empty archive.
func NewArchive() *Archive { return &Archive{entries: map[string]Entry{}} }

// Add adds or replaces e, and the parents of its name as 0755 directories.
func (a *Archive) Add(e Entry) error {
	name := strings.TrimPrefix(path.Clean("/"+e.Name), "/")
	if name == "" || name == "." {
		return fmt.Errorf("cpio: empty name %q", e.Name)
	}
	e.Name = name
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		if _, ok := a.entries[d]; !ok {
			a.entries[d] = Entry{Name: d, Mode: ModeDir | 0o755}
		}
	}
	a.entries[name] = e
	return nil
}

// File adds a regular file.
func (a *Archive) File(name string, perm uint32, data []byte) error {
	return a.Add(Entry{Name: name, Mode: ModeFile | perm&0o7777, Data: data})
}

// Symlink adds a symbolic link.
func (a *Archive) Symlink(name, target string) error {
	return a.Add(Entry{Name: name, Mode: ModeSymlink | 0o777, Data: []byte(target)})
}

// Dir adds a directory.
func (a *Archive) Dir(name string, perm uint32) error {
	return a.Add(Entry{Name: name, Mode: ModeDir | perm&0o7777})
}

// WriteTo writes the archive, sorted by name, with its trailer.
func (a *Archive) WriteTo(w io.Writer) (int64, error) {
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	cw := &countWriter{w: bufio.NewWriter(w)}
	for i, n := range names {
		if err := writeEntry(cw, a.entries[n], uint32(i+1)); err != nil {
			return cw.n, err
		}
	}
	if err := writeEntry(cw, Entry{Name: "TRAILER!!!"}, 0); err != nil {
		return cw.n, err
	}
	return cw.n, cw.w.(*bufio.Writer).Flush()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func pad4(w *countWriter) error {
	if r := c4(w.n); r != 0 {
		_, err := w.Write(make([]byte, r))
		return err
	}
	return nil
}

func c4(n int64) int64 { return (4 - n%4) % 4 }

func writeEntry(w *countWriter, e Entry, ino uint32) error {
	nlink := uint32(1)
	if e.Mode&ModeType == ModeDir {
		nlink = 2
	}
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check
	_, err := fmt.Fprintf(w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, e.Mode, 0, 0, nlink, 0, len(e.Data), 0, 0, e.DevMajor, e.DevMinor, len(e.Name)+1, 0)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, e.Name+"\x00"); err != nil {
		return err
	}
	if err := pad4(w); err != nil {
		return err
	}
	if _, err := w.Write(e.Data); err != nil {
		return err
	}
	return pad4(w)
}

// ReadArchive reads every member of a newc archive from r, stopping at the
// trailer. Concatenated archives (as initramfs images often are) need one
// call each; io.EOF means r held no further archive.
func ReadArchive(r io.Reader, each func(e Entry) error) error {
	br := &countReader{r: r}
	first := true
	for {
		var hdr [110]byte
		magic := hdr[:6]
		if first {
			// Archives may be followed by zero padding (often to 512 bytes)
			// before the next one or the end: skip it byte by byte.
			for {
				if _, err := io.ReadFull(br, hdr[:1]); err == io.EOF {
					return io.EOF
				} else if err != nil {
					return fmt.Errorf("cpio: %w", err)
				}
				if hdr[0] != 0 {
					break
				}
			}
			magic = hdr[1:6]
		}
		if _, err := io.ReadFull(br, magic); err != nil {
			return fmt.Errorf("cpio: %w", err)
		}
		first = false
		if string(hdr[:6]) != "070701" && string(hdr[:6]) != "070702" {
			return errors.New("cpio: not a newc archive")
		}
		if _, err := io.ReadFull(br, hdr[6:]); err != nil {
			return fmt.Errorf("cpio: %w", err)
		}
		field := func(i int) (uint32, error) {
			var v uint32
			_, err := fmt.Sscanf(string(hdr[6+8*i:6+8*i+8]), "%08x", &v)
			return v, err
		}
		var f [13]uint32
		for i := range f {
			v, err := field(i)
			if err != nil {
				return fmt.Errorf("cpio: bad header: %w", err)
			}
			f[i] = v
		}
		name := make([]byte, f[11])
		if _, err := io.ReadFull(br, name); err != nil {
			return fmt.Errorf("cpio: %w", err)
		}
		if err := br.skip(c4(br.n)); err != nil {
			return err
		}
		if f[6] > 1<<30 {
			return errors.New("cpio: member too large")
		}
		data := make([]byte, f[6])
		if _, err := io.ReadFull(br, data); err != nil {
			return fmt.Errorf("cpio: %w", err)
		}
		if err := br.skip(c4(br.n)); err != nil {
			return err
		}
		n := strings.TrimRight(string(name), "\x00")
		if n == "TRAILER!!!" {
			return nil
		}
		if err := each(Entry{Name: n, Mode: f[1], Data: data, DevMajor: f[9], DevMinor: f[10]}); err != nil {
			return err
		}
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countReader) skip(n int64) error {
	if n == 0 {
		return nil
	}
	_, err := io.ReadFull(c, make([]byte, n))
	return err
}
