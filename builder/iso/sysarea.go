package iso

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"
)

// Scheme is the partition table in the system area (the first 32 KiB),
// which is what a firmware booting the medium as a disk reads.
type Scheme int

const (
	NoTable Scheme = iota // a CD only
	MBR                   // isohybrid: MBR partitions, one of them the ESP
	GPT                   // protective MBR plus GPT
)

func (s Scheme) String() string {
	return [...]string{"none", "MBR", "GPT"}[s]
}

// CodePatch is how the MBR boot code learns where the BIOS boot image is.
type CodePatch int

const (
	PatchNone CodePatch = iota
	// PatchIsolinux: isohdpfx.bin reads LE32 at 432 = image LBA × 4.
	PatchIsolinux
	// PatchGRUB2: boot_hybrid.img reads LE64 at 432 = image LBA × 4 + 4
	// (xorriso's --grub2-mbr), skipping cdboot.img to core.img.
	PatchGRUB2
)

func (p CodePatch) String() string {
	return [...]string{"none", "isolinux", "grub2"}[p]
}

// Extent names the range of the image a partition covers; it is resolved
// once the layout is known.
type Extent int

const (
	// ExtentWhole starts at byte 0 and covers the whole image (isohybrid).
	ExtentWhole Extent = iota
	// ExtentISO covers the ISO 9660 volume from 512-byte sector 64.
	ExtentISO
	// ExtentBootImage covers the image of Partition.BootEntry.
	ExtentBootImage
)

// Partition is one entry of the MBR or the GPT.
type Partition struct {
	Extent    Extent
	BootEntry int // with ExtentBootImage: index into Spec.Boot
	MBRType   byte
	Bootable  bool
	GPTType   [16]byte // on-disk (mixed-endian) bytes
	GPTName   string
	GPTAttrs  uint64
}

// SystemArea is what bainode writes into the first 16 blocks.
type SystemArea struct {
	Scheme Scheme
	// Code is the MBR boot code (at most 432 bytes): isohdpfx.bin,
	// boot_hybrid.img, or cut from a source medium.
	Code  []byte
	Patch CodePatch
	// ProtectiveBootable sets the active flag on the protective MBR entry.
	ProtectiveBootable bool
	// ForceBootable adds a second, active, one-sector MBR entry next to
	// the protective one (xorriso's --mbr-force-bootable): some BIOSes
	// boot a disk only when an MBR entry is active.
	ForceBootable bool
	Partitions    []Partition
}

// GPT partition types, in on-disk byte order.
var (
	GUIDESP       = guid("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	GUIDBasicData = guid("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7")
)

// guid turns the textual form into GPT's mixed-endian bytes.
func guid(s string) (g [16]byte) {
	var raw [16]byte
	j := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			continue
		}
		var v byte
		fmt.Sscanf(s[i:i+2], "%02X", &v)
		raw[j] = v
		j++
		i++
	}
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	copy(g[8:], raw[8:])
	return g
}

// resolved is a partition with its extent in 512-byte sectors.
type resolved struct {
	Partition
	Start, Sectors uint64
}

// writeSystemArea writes the MBR (and GPT) of an image of total bytes whose
// BIOS boot image starts at biosLBA. seed makes the disk id and GUIDs
// deterministic.
func writeSystemArea(f io.WriterAt, sa SystemArea, parts []resolved, total int64, biosLBA uint32, seed []byte) error {
	if sa.Scheme == NoTable && sa.Code == nil {
		return nil
	}
	if len(sa.Code) > 432 {
		return fmt.Errorf("system area: MBR boot code is %d bytes, at most 432 fit", len(sa.Code))
	}
	mbr := make([]byte, 512)
	copy(mbr, sa.Code)
	switch sa.Patch {
	case PatchIsolinux:
		binary.LittleEndian.PutUint32(mbr[432:], biosLBA*4)
	case PatchGRUB2:
		binary.LittleEndian.PutUint64(mbr[432:], uint64(biosLBA)*4+4)
	}
	copy(mbr[440:444], seed[:4])
	mbr[510], mbr[511] = 0x55, 0xaa
	sectors := uint64(total / 512)

	switch sa.Scheme {
	case MBR:
		if len(parts) > 4 {
			return fmt.Errorf("system area: %d MBR partitions, at most 4 fit", len(parts))
		}
		for i, p := range parts {
			putMBREntry(mbr[446+16*i:], p.Bootable, p.MBRType, p.Start, p.Sectors)
		}
	case GPT:
		putMBREntry(mbr[446:], sa.ProtectiveBootable, 0xee, 1, min(sectors-1, 0xffffffff))
		if sa.ForceBootable {
			putMBREntry(mbr[462:], true, 0x00, 0, 1)
		}
		if err := writeGPT(f, parts, sectors, seed); err != nil {
			return err
		}
	}
	_, err := f.WriteAt(mbr, 0)
	return err
}

func putMBREntry(e []byte, bootable bool, typ byte, start, n uint64) {
	if bootable {
		e[0] = 0x80
	}
	copy(e[1:4], chs(start))
	e[4] = typ
	copy(e[5:8], chs(start+n-1))
	binary.LittleEndian.PutUint32(e[8:], uint32(start))
	binary.LittleEndian.PutUint32(e[12:], uint32(n))
}

// chs encodes a sector in the 64-head, 32-sector geometry isohybrid uses.
func chs(lba uint64) []byte {
	const heads, spt = 64, 32
	c := lba / (heads * spt)
	if c > 1023 {
		return []byte{0xfe, 0xff, 0xff}
	}
	h := (lba / spt) % heads
	s := lba%spt + 1
	return []byte{byte(h), byte(s) | byte(c>>8)<<6, byte(c)}
}

const gptEntries, gptEntrySize = 128, 128

func writeGPT(f io.WriterAt, parts []resolved, sectors uint64, seed []byte) error {
	if len(parts) > gptEntries {
		return errors.New("system area: too many GPT partitions")
	}
	table := make([]byte, gptEntries*gptEntrySize)
	for i, p := range parts {
		e := table[i*gptEntrySize:]
		copy(e[0:16], p.GPTType[:])
		u := derivedGUID(seed, byte(i+1))
		copy(e[16:32], u[:])
		binary.LittleEndian.PutUint64(e[32:], p.Start)
		binary.LittleEndian.PutUint64(e[40:], p.Start+p.Sectors-1)
		binary.LittleEndian.PutUint64(e[48:], p.GPTAttrs)
		name := utf16.Encode([]rune(p.GPTName))
		for j := 0; j < len(name) && j < 36; j++ {
			binary.LittleEndian.PutUint16(e[56+2*j:], name[j])
		}
	}
	tableSectors := uint64(len(table) / 512)
	last := sectors - 1
	backupTable := last - tableSectors
	header := func(self, other, tableLBA uint64) []byte {
		h := make([]byte, 512)
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], self)
		binary.LittleEndian.PutUint64(h[32:], other)
		binary.LittleEndian.PutUint64(h[40:], 2+tableSectors)
		binary.LittleEndian.PutUint64(h[48:], backupTable-1)
		d := derivedGUID(seed, 0)
		copy(h[56:72], d[:])
		binary.LittleEndian.PutUint64(h[72:], tableLBA)
		binary.LittleEndian.PutUint32(h[80:], gptEntries)
		binary.LittleEndian.PutUint32(h[84:], gptEntrySize)
		binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(table))
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		return h
	}
	for _, w := range []struct {
		off int64
		b   []byte
	}{
		{512, header(1, last, 2)},
		{1024, table},
		{int64(backupTable) * 512, table},
		{int64(last) * 512, header(last, 1, backupTable)},
	} {
		if _, err := f.WriteAt(w.b, w.off); err != nil {
			return err
		}
	}
	return nil
}

// derivedGUID is a version-4-shaped GUID taken from seed, so the same
// inputs give the same partition ids.
func derivedGUID(seed []byte, n byte) (g [16]byte) {
	h := hashOf(append(append([]byte(nil), seed...), n))
	copy(g[:], h[:16])
	g[7] = g[7]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g
}

// parsedArea is the system area found on a medium.
type parsedArea struct {
	Code      []byte
	Scheme    Scheme
	MBRParts  []mbrEntry
	GPTParts  []gptEntry
	ProtBoot  bool
	ForceBoot bool
	MBR       []byte // the whole first sector
}

type mbrEntry struct {
	Bootable       bool
	Type           byte
	Start, Sectors uint64
}

type gptEntry struct {
	Type        [16]byte
	Name        string
	Attrs       uint64
	First, Last uint64
}

func readSystemArea(r io.ReaderAt) (*parsedArea, error) {
	b := make([]byte, 32*1024)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("read system area: %w", err)
	}
	pa := &parsedArea{}
	if bytes.Equal(b[:512], make([]byte, 512)) {
		return pa, nil
	}
	pa.Code = append([]byte(nil), b[:432]...)
	pa.MBR = append([]byte(nil), b[:512]...)
	if b[510] != 0x55 || b[511] != 0xaa {
		return pa, nil
	}
	pa.Scheme = MBR
	for i := 0; i < 4; i++ {
		e := b[446+16*i : 462+16*i]
		if e[4] == 0 && binary.LittleEndian.Uint32(e[12:]) == 0 {
			continue
		}
		if e[4] == 0xee {
			pa.Scheme = GPT
			pa.ProtBoot = e[0] == 0x80
			continue
		}
		if e[0] == 0x80 && e[4] == 0 && binary.LittleEndian.Uint32(e[8:]) == 0 && binary.LittleEndian.Uint32(e[12:]) == 1 {
			pa.ForceBoot = true
		}
		pa.MBRParts = append(pa.MBRParts, mbrEntry{
			Bootable: e[0] == 0x80, Type: e[4],
			Start:   uint64(binary.LittleEndian.Uint32(e[8:])),
			Sectors: uint64(binary.LittleEndian.Uint32(e[12:])),
		})
	}
	if pa.Scheme != GPT {
		return pa, nil
	}
	h := b[512:1024]
	if string(h[:8]) != "EFI PART" {
		return nil, errors.New("system area: protective MBR but no GPT header at sector 1")
	}
	tableLBA := binary.LittleEndian.Uint64(h[72:])
	n := binary.LittleEndian.Uint32(h[80:])
	size := binary.LittleEndian.Uint32(h[84:])
	if size < 128 || n > 1024 {
		return nil, fmt.Errorf("system area: GPT with %d entries of %d bytes", n, size)
	}
	table := make([]byte, int(n)*int(size))
	if _, err := r.ReadAt(table, int64(tableLBA)*512); err != nil {
		return nil, fmt.Errorf("read GPT entries: %w", err)
	}
	for i := 0; i < int(n); i++ {
		e := table[i*int(size):]
		var t [16]byte
		copy(t[:], e[:16])
		if t == ([16]byte{}) {
			continue
		}
		u := make([]uint16, 36)
		for j := range u {
			u[j] = binary.LittleEndian.Uint16(e[56+2*j:])
		}
		name := string(utf16.Decode(u))
		if k := bytes.IndexByte([]byte(name), 0); k >= 0 {
			name = name[:k]
		}
		pa.GPTParts = append(pa.GPTParts, gptEntry{
			Type: t, Name: name,
			First: binary.LittleEndian.Uint64(e[32:]),
			Last:  binary.LittleEndian.Uint64(e[40:]),
			Attrs: binary.LittleEndian.Uint64(e[48:]),
		})
	}
	return pa, nil
}
