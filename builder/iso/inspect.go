package iso

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"
)

// Medium is what bainode learns from an existing ISO: its tree, its boot
// entries and its system area. The layout comes from these structures
// alone, never from version strings.
type Medium struct {
	Path     string
	VolumeID string
	Blocks   uint32 // ISO 9660 volume size
	Modified time.Time
	Files    []File // Content points into the medium
	Boot     []FoundEntry
	Catalog  string // path of the boot catalog in the tree ("" if hidden)
	Area     *parsedArea
}

// FoundEntry is a boot entry with the file or partition holding its image.
type FoundEntry struct {
	CatalogEntry
	Path      string // the image's file, "" if outside the tree
	Size      int64  // the image's bytes
	InfoTable bool   // a valid boot info table at byte 8
	GRUB2Info bool   // image 512-byte address + 5 at byte 2548
}

// Inspect reads the medium at p.
func Inspect(p string) (*Medium, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vi, err := readPVD(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	m := &Medium{Path: p, VolumeID: vi.VolumeID, Blocks: vi.Blocks}
	pvd, err := readBlock(f, 16)
	if err != nil {
		return nil, err
	}
	m.Modified = pvdTime(pvd[830:847])

	files, byLBA, err := readTree(f, p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	m.Files = files

	if m.Area, err = readSystemArea(f); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	cat, err := ReadCatalog(f)
	if errors.Is(err, errNoBootRecord) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if cf, ok := byLBA[cat.LBA]; ok {
		m.Catalog = cf.Path
	}
	for _, e := range cat.Entries {
		fe := FoundEntry{CatalogEntry: e}
		if tf, ok := byLBA[e.LBA]; ok && !tf.Dir {
			fe.Path, fe.Size = tf.Path, tf.Content.Size
		} else if n := m.Area.partitionAt(uint64(e.LBA) * 4); n > 0 {
			fe.Size = int64(n) * 512
		} else {
			fe.Size = int64(e.Sectors) * 512
		}
		head := make([]byte, min(fe.Size, 4096))
		if _, err := f.ReadAt(head, int64(e.LBA)*Block); err != nil {
			return nil, fmt.Errorf("%s: boot image at block %d: %w", p, e.LBA, err)
		}
		if len(head) >= 64 {
			fe.InfoTable = binary.LittleEndian.Uint32(head[8:]) == 16 && binary.LittleEndian.Uint32(head[12:]) == e.LBA
		}
		if len(head) >= 2556 {
			fe.GRUB2Info = binary.LittleEndian.Uint64(head[2548:]) == uint64(e.LBA)*4+5
		}
		m.Boot = append(m.Boot, fe)
	}
	return m, nil
}

// partitionAt returns the sectors of the partition starting at start.
func (pa *parsedArea) partitionAt(start uint64) uint64 {
	for _, e := range pa.MBRParts {
		if e.Start == start && start > 0 {
			return e.Sectors
		}
	}
	for _, e := range pa.GPTParts {
		if e.First == start {
			return e.Last - e.First + 1
		}
	}
	return 0
}

// pvdTime parses a 17-byte volume descriptor time.
func pvdTime(b []byte) time.Time {
	t, err := time.Parse("20060102150405", string(b[:14]))
	if err != nil {
		return time.Time{}
	}
	return t.Add(-time.Duration(int8(b[16])) * 15 * time.Minute)
}
