package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// MediumVolumeID is the ISO9660 volume ID of an image-mode ISO ('bainode
// iso --mode image'). The agent finds its boot medium by it, reads a
// self-contained ISO's image from it, and never picks it as the target
// disk (a USB stick written with dd is a disk like any other).
const MediumVolumeID = "BAINODE_DEPLOY"

// MaxPart is the largest file the ISO writer puts on the medium: ISO9660
// records a file's size in 32 bits, so a larger image is split into parts.
const MaxPart = 2 << 30

const isoSector = 2048

// MediumParts names the files that hold a compressed image of size bytes
// on the medium, in order: ISO9660 names, the same in every reader.
func MediumParts(size int64) []string {
	var out []string
	for i := int64(0); i*MaxPart < size || i == 0; i++ {
		out = append(out, fmt.Sprintf("IMAGE%03d.ZST", i))
	}
	return out
}

// mediumVolumeID reads the ISO9660 volume ID of the device at path, or ""
// when it holds no ISO9660 file system.
func mediumVolumeID(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	pvd := make([]byte, isoSector)
	if _, err := f.ReadAt(pvd, 16*isoSector); err != nil {
		return ""
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return ""
	}
	return strings.TrimRight(string(pvd[40:72]), " ")
}

// findMedium is the block device (CD or disk) that holds the ISO9660
// volume volID.
func findMedium(sysBlock, dev, volID string) (string, error) {
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return "", err
	}
	var seen []string
	for _, e := range ents {
		p := filepath.Join(dev, e.Name())
		v := mediumVolumeID(p)
		if v == volID {
			return p, nil
		}
		if v != "" {
			seen = append(seen, fmt.Sprintf("%s (%s)", e.Name(), v))
		}
	}
	if len(seen) == 0 {
		seen = append(seen, "none")
	}
	return "", fmt.Errorf("no boot medium with volume ID %s among the block devices (ISO9660 volumes: %s); is the ISO still attached?", volID, strings.Join(seen, ", "))
}

// openParts opens the named files of the root directory of the ISO9660
// volume at path as one stream, in order.
func openParts(path string, names []string) (io.ReadCloser, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	files, err := rootFiles(f)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	var rs []io.Reader
	var total int64
	for _, n := range names {
		ext, ok := files[strings.ToUpper(n)]
		if !ok {
			f.Close()
			return nil, 0, fmt.Errorf("%s: no file %s in the root directory", path, n)
		}
		rs = append(rs, io.NewSectionReader(f, ext.lba*isoSector, ext.size))
		total += ext.size
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(rs...), f}, total, nil
}

type extent struct{ lba, size int64 }

// rootFiles lists the regular files of the volume's root directory by
// their ISO9660 names (upper case, without ";1").
func rootFiles(r io.ReaderAt) (map[string]extent, error) {
	pvd := make([]byte, isoSector)
	if _, err := r.ReadAt(pvd, 16*isoSector); err != nil {
		return nil, err
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return nil, errors.New("no ISO9660 primary volume descriptor")
	}
	root := pvd[156 : 156+34]
	lba, size := int64(binary.LittleEndian.Uint32(root[2:])), int64(binary.LittleEndian.Uint32(root[10:]))
	if size <= 0 || size > 16<<20 {
		return nil, fmt.Errorf("root directory of %d bytes", size)
	}
	dir := make([]byte, size)
	if _, err := r.ReadAt(dir, lba*isoSector); err != nil {
		return nil, err
	}
	out := map[string]extent{}
	for off := 0; off < len(dir); {
		n := int(dir[off])
		if n == 0 { // records do not cross sectors: go on at the next one
			off = (off/isoSector + 1) * isoSector
			continue
		}
		if n < 34 || off+n > len(dir) || 33+int(dir[off+32]) > n {
			return nil, fmt.Errorf("bad directory record at byte %d of the root directory", off)
		}
		rec := dir[off : off+n]
		name := string(rec[33 : 33+int(rec[32])])
		if rec[25]&0x82 == 0 && name != "\x00" && name != "\x01" { // not a directory, not the last extent of many
			name, _, _ = strings.Cut(name, ";")
			out[strings.ToUpper(strings.TrimSuffix(name, "."))] = extent{
				lba: int64(binary.LittleEndian.Uint32(rec[2:])), size: int64(binary.LittleEndian.Uint32(rec[10:])),
			}
		}
		off += n
	}
	return out, nil
}

// imageSource is where writeStream reads the compressed image: bainoded
// over HTTP (rangeReader) or the boot medium (mediumReader).
type imageSource interface {
	io.Reader
	progress() (done, total int64)
	digest() []byte
	resumed() int
}

// mediumReader reads the image's parts off the boot medium, hashing them.
type mediumReader struct {
	r    io.ReadCloser
	off  atomic.Int64 // read by progress on writeStream's side of the decoder
	size int64
	sum  hash.Hash
}

func openMediumImage(sys System, img Image) (*mediumReader, string, error) {
	dev, err := findMedium(sys.SysBlock, sys.Dev, img.Medium)
	if err != nil {
		return nil, "", err
	}
	r, total, err := openParts(dev, img.Parts)
	if err != nil {
		return nil, "", err
	}
	if total != img.Size {
		r.Close()
		return nil, "", fmt.Errorf("%s: the image's parts hold %d bytes, the configuration says %d", dev, total, img.Size)
	}
	return &mediumReader{r: r, size: total, sum: sha256.New()}, dev, nil
}

func (m *mediumReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.sum.Write(p[:n])
	m.off.Add(int64(n))
	return n, err
}

func (m *mediumReader) Close() error             { return m.r.Close() }
func (m *mediumReader) progress() (int64, int64) { return m.off.Load(), m.size }
func (m *mediumReader) digest() []byte           { return m.sum.Sum(nil) }
func (m *mediumReader) resumed() int             { return 0 }

var _, _ imageSource = (*mediumReader)(nil), (*rangeReader)(nil)

// withoutMedia drops the disks that are a deploy medium: a stick written
// with dd is a non-removable disk to the kernel, and must never be the
// target, even when the rule is "the only disk".
func withoutMedia(disks []Disk, logf func(string, ...any)) []Disk {
	out := disks[:0:0]
	for _, d := range disks {
		if mediumVolumeID(d.Dev) == MediumVolumeID {
			logf("%s is the boot medium: not a target", d.Name)
			continue
		}
		out = append(out, d)
	}
	return out
}

// holdsImage reports whether the disk's first MiB is already head: the
// agent writes it last, so the disk holds this very deploy, complete.
func holdsImage(f io.ReaderAt, head []byte) bool {
	got := make([]byte, len(head))
	_, err := f.ReadAt(got, 0)
	return err == nil && bytes.Equal(got, head)
}

// deployedAlready reports whether disk holds exactly what this deploy
// would write: the image's first MiB with its table edited for the disk
// (written last, so the rest is there too) and the seed.
func deployedAlready(disk Disk, seed []byte, open func() (imageSource, func() error, error)) (bool, error) {
	src, closeSrc, err := open()
	if err != nil {
		return false, err
	}
	defer closeSrc()
	dec, err := zstd.NewReader(src)
	if err != nil {
		return false, err
	}
	defer dec.Close()
	head := make([]byte, headSize)
	if _, err := io.ReadFull(dec, head); err != nil {
		return false, fmt.Errorf("reading the image: %w", err)
	}
	f, err := os.Open(disk.Dev)
	if err != nil {
		return false, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return false, err
	}
	lay, err := editTable(head, size)
	if err != nil {
		return false, nil // the deploy itself reports it
	}
	if !holdsImage(f, head) {
		return false, nil
	}
	got := make([]byte, len(seed))
	_, err = f.ReadAt(got, lay.SeedOff)
	return err == nil && bytes.Equal(got, seed), nil
}
