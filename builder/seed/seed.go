// Package seed writes NoCloud seed images (ISO9660 "cidata" or FAT "CIDATA")
// natively with go-diskfs. It knows nothing of sites or nodes: it writes the
// top-level regular files of any fs.FS.
package seed

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"

	"github.com/lablup/bainode/builder/atomicfile"
)

// Format names a seed filesystem.
type Format string

const (
	ISO Format = "iso" // ISO9660 with Rock Ridge, volume id "cidata" (the default)
	FAT Format = "fat" // FAT12 labelled "CIDATA", as cloud-localds -f vfat makes
)

// ParseFormat accepts the names used on the command line and in site files.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "", "iso", "iso9660":
		return ISO, nil
	case "fat", "vfat":
		return FAT, nil
	}
	return "", fmt.Errorf("seed format %q: want iso or vfat", s)
}

// Ext is the file name extension bainode uses for the format.
func (f Format) Ext() string {
	if f == FAT {
		return ".img"
	}
	return ".iso"
}

// Write writes files as a seed image at path in the given format.
func Write(path string, files fs.FS, f Format) error {
	if f == FAT {
		return WriteFAT(path, files)
	}
	return WriteISO(path, files)
}

// Epoch is the timestamp stamped on everything in a seed: SOURCE_DATE_EPOCH
// when set, else the Unix epoch, so equal inputs give byte-identical seeds.
func Epoch() time.Time {
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Unix(0, 0).UTC()
}

type entry struct {
	name string
	data []byte
}

// entries reads the top-level regular files of fsys in name order.
func entries(fsys fs.FS) ([]entry, error) {
	des, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var out []entry
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		b, err := fs.ReadFile(fsys, de.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, entry{de.Name(), b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	for _, e := range out {
		if e.name == "meta-data" {
			return out, nil
		}
	}
	return nil, fmt.Errorf("no meta-data file: cloud-init ignores a seed without one")
}

// copyIn writes the entries to the root of a new filesystem.
func copyIn(fsys filesystem.FileSystem, ents []entry) error {
	for _, e := range ents {
		f, err := fsys.OpenFile("/"+e.name, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return err
		}
		if _, err := f.Write(e.data); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// atomically builds the image in a private scratch directory beside path
// (0700, with the image created 0600 from its first byte, since seeds carry
// password hashes and keys) and renames it into place, so a reader never sees
// half a seed and nobody else can read one while it is built.
func atomically(path string, build func(img *os.File, ws string) error) error {
	s, err := atomicfile.NewScratch(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer s.Close()
	ws := filepath.Join(s.Dir, "ws")
	if err := os.Mkdir(ws, 0o700); err != nil {
		return err
	}
	img, err := os.OpenFile(filepath.Join(s.Dir, "img"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = build(img, ws)
	if cerr := img.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return s.Commit("img", path)
}

// create makes a go-diskfs disk of size bytes on img, which is already open
// with its final mode (diskfs.Create would make it 0644 under the umask).
func create(img *os.File, size int64) (*disk.Disk, error) {
	if err := img.Truncate(size); err != nil {
		return nil, err
	}
	return diskfs.OpenBackend(file.New(img, false), diskfs.WithOpenMode(diskfs.ReadWrite))
}
