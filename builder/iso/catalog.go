package iso

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Block is the ISO 9660 logical block size bainode reads and writes.
const Block = 2048

// Platform is an El Torito platform id.
type Platform byte

const (
	BIOS Platform = 0x00
	EFI  Platform = 0xef
)

func (p Platform) String() string {
	switch p {
	case BIOS:
		return "BIOS"
	case EFI:
		return "UEFI"
	}
	return fmt.Sprintf("platform 0x%02x", byte(p))
}

// CatalogEntry is one boot entry of an El Torito catalog, as found on a medium.
type CatalogEntry struct {
	Platform Platform
	Bootable bool
	Media    byte   // 0: no emulation
	LoadSeg  uint16 // 0 means the default 0x7c0
	SysType  byte
	Sectors  uint16 // 512-byte sectors the firmware loads
	LBA      uint32 // in 2048-byte blocks
	// offset of the entry in the catalog, for patching
	offset int
}

// Catalog is a parsed boot catalog and where it lies.
type Catalog struct {
	LBA     uint32
	Entries []CatalogEntry
}

var (
	errNoBootRecord = errors.New("no El Torito boot record at block 17")
	elToritoID      = []byte("EL TORITO SPECIFICATION")
)

// readBlock reads one 2048-byte block.
func readBlock(r io.ReaderAt, lba uint32) ([]byte, error) {
	b := make([]byte, Block)
	if _, err := r.ReadAt(b, int64(lba)*Block); err != nil {
		return nil, fmt.Errorf("read block %d: %w", lba, err)
	}
	return b, nil
}

// volumeInfo is what bainode needs of the primary volume descriptor.
type volumeInfo struct {
	Blocks   uint32 // volume space size
	VolumeID string
}

func readPVD(r io.ReaderAt) (volumeInfo, error) {
	b, err := readBlock(r, 16)
	if err != nil {
		return volumeInfo{}, err
	}
	if b[0] != 1 || string(b[1:6]) != "CD001" {
		return volumeInfo{}, errors.New("no ISO 9660 primary volume descriptor at block 16")
	}
	return volumeInfo{
		Blocks:   binary.LittleEndian.Uint32(b[80:84]),
		VolumeID: string(bytes.TrimRight(b[40:72], " \x00")),
	}, nil
}

// ReadCatalog finds the El Torito boot record among the volume descriptors
// and parses the catalog it points at.
func ReadCatalog(r io.ReaderAt) (*Catalog, error) {
	var catLBA uint32
	found := false
	for lba := uint32(16); lba < 16+32; lba++ {
		b, err := readBlock(r, lba)
		if err != nil {
			return nil, err
		}
		if string(b[1:6]) != "CD001" {
			break
		}
		if b[0] == 255 {
			break
		}
		if b[0] == 0 && bytes.HasPrefix(b[7:39], elToritoID) {
			catLBA = binary.LittleEndian.Uint32(b[71:75])
			found = true
			break
		}
	}
	if !found {
		return nil, errNoBootRecord
	}
	b, err := readBlock(r, catLBA)
	if err != nil {
		return nil, err
	}
	return parseCatalog(catLBA, b)
}

func parseCatalog(lba uint32, b []byte) (*Catalog, error) {
	if b[0] != 1 || b[30] != 0x55 || b[31] != 0xaa {
		return nil, fmt.Errorf("boot catalog at block %d: bad validation entry", lba)
	}
	var sum uint16
	for i := 0; i < 32; i += 2 {
		sum += binary.LittleEndian.Uint16(b[i:])
	}
	if sum != 0 {
		return nil, fmt.Errorf("boot catalog at block %d: validation entry checksum is wrong", lba)
	}
	c := &Catalog{LBA: lba}
	c.Entries = append(c.Entries, entryAt(b, 32, Platform(b[1])))
	platform := Platform(b[1])
	for off := 64; off+32 <= len(b); off += 32 {
		switch e := b[off]; {
		case e == 0x90 || e == 0x91:
			platform = Platform(b[off+1])
		case e == 0x88 || e == 0x00:
			if e == 0 && bytes.Equal(b[off:off+32], make([]byte, 32)) {
				continue
			}
			c.Entries = append(c.Entries, entryAt(b, off, platform))
		case e == 0x44: // extension entry: nothing bainode uses
		default:
			return c, nil
		}
	}
	return c, nil
}

func entryAt(b []byte, off int, p Platform) CatalogEntry {
	e := b[off : off+32]
	return CatalogEntry{
		Platform: p,
		Bootable: e[0] == 0x88,
		Media:    e[1],
		LoadSeg:  binary.LittleEndian.Uint16(e[2:4]),
		SysType:  e[4],
		Sectors:  binary.LittleEndian.Uint16(e[6:8]),
		LBA:      binary.LittleEndian.Uint32(e[8:12]),
		offset:   off,
	}
}

// patchEntry rewrites the LBA and sector count of entry i in the catalog
// block of the file f.
func patchEntry(f io.WriterAt, c *Catalog, i int, lba uint32, sectors uint16) error {
	var b [6]byte
	binary.LittleEndian.PutUint16(b[0:2], sectors)
	binary.LittleEndian.PutUint32(b[2:6], lba)
	_, err := f.WriteAt(b[:], int64(c.LBA)*Block+int64(c.Entries[i].offset)+6)
	c.Entries[i].LBA, c.Entries[i].Sectors = lba, sectors
	return err
}
