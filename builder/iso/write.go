// Package iso writes bootable hybrid ISO images natively and remasters
// Ubuntu's live-server ISOs, without root, loop devices or mounts.
//
// An image is a Spec: a list of files, El Torito boot entries and a system
// area (MBR or GPT for booting the medium as a disk), plus partitions
// appended after the ISO 9660 volume. go-diskfs writes the ISO 9660 tree
// and the boot catalog (Rock Ridge on, Joliet off: with Joliet its boot
// record lands on the wrong block); bainode owns the rest: the system area,
// the grub2 boot-info patch, appended partitions, padding and the clamping
// of timestamps that makes the output reproducible.
package iso

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// Content is where a file's bytes come from: Data, or Size bytes of the
// host file Path from Offset (Size < 0: to its end).
type Content struct {
	Data   []byte
	Path   string
	Offset int64
	Size   int64
}

func (c Content) size() (int64, error) {
	if c.Path == "" {
		return int64(len(c.Data)), nil
	}
	if c.Size >= 0 {
		return c.Size, nil
	}
	fi, err := os.Stat(c.Path)
	if err != nil {
		return 0, err
	}
	return fi.Size() - c.Offset, nil
}

// File is one entry of the tree. Exactly one of Dir, Link, Content applies.
type File struct {
	Path    string // slash-separated, relative to the root
	Dir     bool
	Link    string // symlink target
	Content Content
	Mode    fs.FileMode // permission bits; 0 gives 0644, or 0755 for directories
	ModTime time.Time   // zero: the Spec's Epoch
}

// BootEntry is one El Torito entry. The image is the file Path, or with
// Appended > 0 the Appended-th entry of Spec.Appended (outside the tree, as
// Ubuntu 22.04+ does with its ESP).
type BootEntry struct {
	Platform Platform
	Path     string
	Appended int
	// LoadSize is the count of 512-byte sectors the firmware loads (4 for
	// a no-emulation BIOS image; the image size for EFI, 0 if too big).
	LoadSize uint16
	// InfoTable writes the 56-byte boot info table at byte 8 (isolinux and
	// GRUB's eltorito.img want it).
	InfoTable bool
	// GRUB2Info writes the image's 512-byte address + 5 at byte 2548
	// (xorriso's --grub2-boot-info, for GRUB's eltorito.img).
	GRUB2Info bool
}

// Spec describes a whole image.
type Spec struct {
	VolumeID string
	Files    []File
	Catalog  string // path of the boot catalog in the tree
	Boot     []BootEntry
	System   SystemArea
	Appended []Content // partitions after the volume, 2048-aligned
	// Epoch is the time every stamp is clamped to (SOURCE_DATE_EPOCH).
	Epoch time.Time
	// Secret makes the output 0600 from its first byte (a per-node seed
	// holds password hashes and keys).
	Secret bool
}

// Layout is where Write put the boot images, in 2048-byte blocks.
type Layout struct {
	VolumeBlocks uint32 // the ISO 9660 volume
	Boot         []Span // per Spec.Boot entry
	Appended     []Span // per Spec.Appended entry
	Size         int64  // bytes of the whole image
}

// Span is a byte range in 2048-byte blocks plus its exact length.
type Span struct {
	LBA  uint32
	Size int64
}

// Write writes spec to out atomically: a temp file in out's directory,
// renamed over out when complete.
func Write(spec Spec, out string) (Layout, error) {
	if err := spec.check(); err != nil {
		return Layout{}, err
	}
	dir := filepath.Dir(out)
	// go-diskfs removes its workspace in Finalize; it only ever holds
	// copies, links and the sparse stand-ins of deferred files.
	ws, err := workspace(dir)
	if err != nil {
		return Layout{}, err
	}
	defer os.RemoveAll(ws)
	tmp, err := os.CreateTemp(dir, ".bainode-iso-*.tmp")
	if err != nil {
		return Layout{}, err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	mode := fs.FileMode(0o644)
	if spec.Secret {
		mode = 0o600
	}
	if err := tmp.Chmod(mode); err != nil {
		return Layout{}, err
	}
	lay, err := write(spec, ws, tmp)
	if err != nil {
		return Layout{}, err
	}
	if err := tmp.Sync(); err != nil {
		return Layout{}, err
	}
	if err := tmp.Close(); err != nil {
		return Layout{}, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return Layout{}, err
	}
	return lay, nil
}

func (s *Spec) check() error {
	var errs []error
	if len(s.VolumeID) > 32 {
		errs = append(errs, fmt.Errorf("volume id %q: longer than 32 characters", s.VolumeID))
	}
	seen := map[string]bool{}
	for _, f := range s.Files {
		p := path.Clean(f.Path)
		if p != f.Path || p == "." || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "../") {
			errs = append(errs, fmt.Errorf("file %q: not a clean relative path", f.Path))
		}
		if seen[p] {
			errs = append(errs, fmt.Errorf("file %q: listed twice", f.Path))
		}
		seen[p] = true
	}
	for i, b := range s.Boot {
		switch {
		case b.Appended > 0 && b.Path != "":
			errs = append(errs, fmt.Errorf("boot entry %d: both a path and an appended partition", i))
		case b.Appended > len(s.Appended):
			errs = append(errs, fmt.Errorf("boot entry %d: appended partition %d does not exist", i, b.Appended))
		case b.Appended == 0 && !seen[b.Path]:
			errs = append(errs, fmt.Errorf("boot entry %d: image %q is not in the tree", i, b.Path))
		}
	}
	if len(s.Boot) > 0 && s.Catalog == "" {
		errs = append(errs, errors.New("boot entries without a catalog path"))
	}
	if s.Epoch.IsZero() {
		errs = append(errs, errors.New("no epoch: set SOURCE_DATE_EPOCH or Spec.Epoch"))
	}
	return errors.Join(errs...)
}

// placeholder is the hidden one-block file an appended boot entry points
// at while go-diskfs writes the catalog; bainode then repoints the entry.
func placeholder(i int) string { return fmt.Sprintf(".bainode-appended-%d", i) }

func write(spec Spec, ws string, out *os.File) (Layout, error) {
	if err := os.Chmod(ws, 0o755); err != nil {
		return Layout{}, err
	}
	deferred := deferLarge(spec)
	if err := populate(ws, spec, deferred); err != nil {
		return Layout{}, err
	}
	var et *iso9660.ElTorito
	if len(spec.Boot) > 0 {
		et = &iso9660.ElTorito{BootCatalog: "/" + spec.Catalog}
		for i, b := range spec.Boot {
			e := &iso9660.ElToritoEntry{
				Platform:  iso9660.Platform(b.Platform),
				Emulation: iso9660.NoEmulation,
				BootFile:  "/" + b.Path,
				BootTable: b.InfoTable,
			}
			if b.Appended > 0 {
				e.BootFile, e.HideBootFile = "/"+placeholder(i), true
				if err := os.WriteFile(filepath.Join(ws, placeholder(i)), make([]byte, Block), 0o644); err != nil {
					return Layout{}, err
				}
			}
			e.SetLoadSize(b.LoadSize)
			et.Entries = append(et.Entries, e)
		}
	}
	fsys, err := iso9660.Create(freshBackend{file.New(out, false), out}, 0, 0, Block, ws)
	if err != nil {
		return Layout{}, fmt.Errorf("iso9660: %w", err)
	}
	if err := fsys.Finalize(iso9660.FinalizeOptions{
		RockRidge: true, ElTorito: et, VolumeIdentifier: spec.VolumeID, DeepDirectories: true,
	}); err != nil {
		return Layout{}, fmt.Errorf("iso9660: %w", err)
	}
	if err := normalize(out, spec.Epoch, spec.VolumeID); err != nil {
		return Layout{}, err
	}
	if err := fillDeferred(out, deferred); err != nil {
		return Layout{}, err
	}
	vi, err := readPVD(out)
	if err != nil {
		return Layout{}, err
	}
	lay := Layout{VolumeBlocks: vi.Blocks}
	end := int64(vi.Blocks) * Block

	// Appended partitions, each 2048-aligned.
	for _, c := range spec.Appended {
		n, err := copyContent(out, end, c)
		if err != nil {
			return Layout{}, fmt.Errorf("appended partition: %w", err)
		}
		lay.Appended = append(lay.Appended, Span{LBA: uint32(end / Block), Size: n})
		end += (n + Block - 1) / Block * Block
	}
	total := end
	if spec.System.Scheme == GPT {
		total += 33 * 512 // backup GPT
	}
	total = (total + Block - 1) / Block * Block
	if err := out.Truncate(total); err != nil {
		return Layout{}, err
	}
	lay.Size = total

	// Boot entries: where go-diskfs put them, then repoint the appended.
	var biosLBA uint32
	if len(spec.Boot) > 0 {
		cat, err := ReadCatalog(out)
		if err != nil {
			return Layout{}, err
		}
		if len(cat.Entries) != len(spec.Boot) {
			return Layout{}, fmt.Errorf("boot catalog: %d entries written, %d asked for", len(cat.Entries), len(spec.Boot))
		}
		for i, b := range spec.Boot {
			ext := Span{LBA: cat.Entries[i].LBA}
			if b.Appended > 0 {
				ext = lay.Appended[b.Appended-1]
				if err := patchEntry(out, cat, i, ext.LBA, b.LoadSize); err != nil {
					return Layout{}, err
				}
			} else {
				ext.Size = sizeOf(spec, b.Path)
			}
			if b.GRUB2Info {
				if err := grub2Info(out, ext); err != nil {
					return Layout{}, err
				}
			}
			if b.InfoTable {
				if err := bootInfoTable(out, ext); err != nil {
					return Layout{}, err
				}
			}
			if b.Platform == BIOS && biosLBA == 0 {
				biosLBA = ext.LBA
			}
			lay.Boot = append(lay.Boot, ext)
		}
	}

	parts, err := resolve(spec.System, lay)
	if err != nil {
		return Layout{}, err
	}
	seed := hashOf([]byte(fmt.Sprintf("%s\x00%d\x00%d", spec.VolumeID, spec.Epoch.Unix(), total)))
	if err := writeSystemArea(out, spec.System, parts, total, biosLBA, seed[:]); err != nil {
		return Layout{}, err
	}
	return lay, nil
}

func sizeOf(spec Spec, p string) int64 {
	for _, f := range spec.Files {
		if f.Path == p {
			n, _ := f.Content.size()
			return n
		}
	}
	return 0
}

// freshBackend hands go-diskfs a writer that drops all-zero writes: the
// output starts empty, so zeros are already there. go-diskfs writes files
// in 2 KiB pieces, and the sparse stand-ins of deferred files are all zeros.
type freshBackend struct {
	backend.Storage
	f *os.File
}

func (b freshBackend) Writable() (backend.WritableFile, error) { return zeroSkipper{b.f}, nil }

type zeroSkipper struct{ *os.File }

func (z zeroSkipper) WriteAt(p []byte, off int64) (int, error) {
	if !allZero(p) {
		return z.File.WriteAt(p, off)
	}
	return len(p), nil
}

var zeroBlock [64 << 10]byte

// allZero compares against a block of zeros: memequal is vectorised, a
// byte loop is not, and go-diskfs hands over every byte of the stand-ins.
func allZero(p []byte) bool {
	for len(p) > 0 {
		n := min(len(p), len(zeroBlock))
		if !bytes.Equal(p[:n], zeroBlock[:n]) {
			return false
		}
		p = p[n:]
	}
	return true
}

// resolve turns the system area's partitions into sector ranges.
func resolve(sa SystemArea, lay Layout) ([]resolved, error) {
	var out []resolved
	for i, p := range sa.Partitions {
		r := resolved{Partition: p}
		switch p.Extent {
		case ExtentWhole:
			r.Start, r.Sectors = 0, uint64(lay.Size/512)
		case ExtentISO:
			r.Start, r.Sectors = 64, uint64(lay.VolumeBlocks)*4-64
		case ExtentBootImage:
			if p.BootEntry < 0 || p.BootEntry >= len(lay.Boot) {
				return nil, fmt.Errorf("partition %d: boot entry %d does not exist", i+1, p.BootEntry)
			}
			b := lay.Boot[p.BootEntry]
			r.Start, r.Sectors = uint64(b.LBA)*4, uint64((b.Size+511)/512)
		}
		if r.Sectors == 0 {
			return nil, fmt.Errorf("partition %d: empty", i+1)
		}
		out = append(out, r)
	}
	return out, nil
}

// grub2Info is xorriso's --grub2-boot-info: GRUB's eltorito.img finds the
// rest of its core image at byte 2548 (image 512-byte address + 5).
func grub2Info(f *os.File, ext Span) error {
	if ext.Size < 2556 {
		return fmt.Errorf("grub2 boot info: boot image of %d bytes is too small", ext.Size)
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(ext.LBA)*4+5)
	_, err := f.WriteAt(b[:], int64(ext.LBA)*Block+2548)
	return err
}

// bootInfoTable writes the El Torito boot info table (mkisofs
// -boot-info-table) after every other patch, so its checksum holds.
func bootInfoTable(f *os.File, ext Span) error {
	if ext.Size < 64 {
		return fmt.Errorf("boot info table: boot image of %d bytes is too small", ext.Size)
	}
	img := make([]byte, (ext.Size+3)/4*4)
	if _, err := f.ReadAt(img[:ext.Size], int64(ext.LBA)*Block); err != nil {
		return err
	}
	var sum uint32
	for i := 64; i+4 <= len(img); i += 4 {
		sum += binary.LittleEndian.Uint32(img[i:])
	}
	t := make([]byte, 56)
	binary.LittleEndian.PutUint32(t[0:], 16)
	binary.LittleEndian.PutUint32(t[4:], ext.LBA)
	binary.LittleEndian.PutUint32(t[8:], uint32(ext.Size))
	binary.LittleEndian.PutUint32(t[12:], sum)
	_, err := f.WriteAt(t, int64(ext.LBA)*Block+8)
	return err
}

// populate materialises the tree in go-diskfs's workspace: hard links where
// the source is a whole host file on the same file system, copies
// otherwise. Directories get their times last, after their children.
func populate(ws string, spec Spec, deferred map[string]Content) error {
	files := append([]File(nil), spec.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	var dirs []File
	for _, f := range files {
		dst := filepath.Join(ws, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		switch {
		case f.Dir:
			if err := os.MkdirAll(dst, perm(f.Mode, 0o755)); err != nil {
				return err
			}
			dirs = append(dirs, f)
			continue
		case f.Link != "":
			if err := os.Symlink(f.Link, dst); err != nil {
				return err
			}
			continue
		}
		if c, ok := deferred[f.Path]; ok {
			// A sparse stand-in: go-diskfs lays it out and writes zeros,
			// bainode then copies the bytes straight to their place.
			if err := sparse(dst, c, perm(f.Mode, 0o644)); err != nil {
				return fmt.Errorf("%s: %w", f.Path, err)
			}
		} else if err := materialise(dst, f.Content, perm(f.Mode, 0o644)); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		t := f.ModTime
		if t.IsZero() || t.After(spec.Epoch) {
			t = spec.Epoch
		}
		if err := os.Chtimes(dst, t, t); err != nil {
			return err
		}
	}
	// Implicit directories take the epoch; listed ones their own time.
	err := filepath.WalkDir(ws, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return os.Chtimes(p, spec.Epoch, spec.Epoch)
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		t := dirs[i].ModTime
		if t.IsZero() || t.After(spec.Epoch) {
			t = spec.Epoch
		}
		if err := os.Chtimes(filepath.Join(ws, filepath.FromSlash(dirs[i].Path)), t, t); err != nil {
			return err
		}
	}
	return nil
}

// deferLarge picks the files to copy after go-diskfs is done: big ranges
// of another file (a source ISO), which would otherwise be copied into the
// workspace first and cost their size in extra disk. Boot images are
// excluded: go-diskfs reads them for the boot info table.
func deferLarge(spec Spec) map[string]Content {
	boot := map[string]bool{}
	for _, b := range spec.Boot {
		boot[b.Path] = true
	}
	out := map[string]Content{}
	for _, f := range spec.Files {
		c := f.Content
		if f.Dir || f.Link != "" || c.Path == "" || boot[f.Path] {
			continue
		}
		// Whole host files too: a workspace on tmpfs cannot link them.
		// One that cannot be sized is left to materialise, which says why.
		if n, err := c.size(); err == nil && n >= 1<<20 {
			c.Size = n
			out[f.Path] = c
		}
	}
	return out
}

func sparse(dst string, c Content, mode fs.FileMode) error {
	n, err := c.size()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if err := f.Truncate(n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fillDeferred copies the deferred files to where the volume's directory
// records put them.
func fillDeferred(out *os.File, deferred map[string]Content) error {
	if len(deferred) == 0 {
		return nil
	}
	files, _, err := readTree(out, "")
	if err != nil {
		return err
	}
	for _, f := range files {
		c, ok := deferred[f.Path]
		if !ok {
			continue
		}
		if f.Content.Size != c.Size {
			return fmt.Errorf("%s: %d bytes on the volume, %d in the source", f.Path, f.Content.Size, c.Size)
		}
		if _, err := copyContent(out, f.Content.Offset, c); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		delete(deferred, f.Path)
	}
	for p := range deferred {
		return fmt.Errorf("%s: not found on the written volume", p)
	}
	return nil
}

func perm(m, def fs.FileMode) fs.FileMode {
	if m&fs.ModePerm == 0 {
		return def
	}
	return m & fs.ModePerm
}

func materialise(dst string, c Content, mode fs.FileMode) error {
	if c.Path == "" {
		return os.WriteFile(dst, c.Data, mode)
	}
	if c.Offset == 0 && c.Size < 0 {
		if err := os.Link(c.Path, dst); err == nil {
			return nil
		}
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := copyContent(f, 0, c); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyContent copies c into f at off and returns its length. Between two
// files it goes through copy_file_range (io.Copy's fast path for a
// LimitedReader over an *os.File).
func copyContent(f *os.File, off int64, c Content) (int64, error) {
	if c.Path == "" {
		_, err := f.WriteAt(c.Data, off)
		return int64(len(c.Data)), err
	}
	n, err := c.size()
	if err != nil {
		return 0, err
	}
	src, err := os.Open(c.Path)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	if _, err := src.Seek(c.Offset, io.SeekStart); err != nil {
		return 0, err
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	got, err := io.Copy(f, &io.LimitedReader{R: src, N: n})
	if err != nil {
		return 0, err
	}
	if got != n {
		return 0, fmt.Errorf("%s: %d bytes short", c.Path, n-got)
	}
	return n, nil
}
