package deploy

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"unicode/utf16"
)

// The image is written for 512-byte sectors; its partition table is
// edited in memory (the image's first MiB, written last) so the partition
// that ends last grows to fill the disk, and a small partition at the end
// of the disk receives the NoCloud seed.

const (
	sector     = 512
	headSize   = 1 << 20 // the image's first MiB: MBR, GPT and its entries
	seedSize   = 8 << 20 // the seed partition
	alignSects = 2048
)

var (
	gptSig          = []byte("EFI PART")
	linuxDataGUID   = guid("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
	errNoPartitions = errors.New("the image has no partition table")
)

// guid encodes a GUID string in GPT's mixed-endian layout.
func guid(s string) [16]byte {
	var raw [16]byte
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			continue
		}
		var v byte
		fmt.Sscanf(s[i:i+2], "%02x", &v)
		b = append(b, v)
		i++
	}
	copy(raw[:], b)
	raw[0], raw[1], raw[2], raw[3] = raw[3], raw[2], raw[1], raw[0]
	raw[4], raw[5] = raw[5], raw[4]
	raw[6], raw[7] = raw[7], raw[6]
	return raw
}

// Layout is the result of editing the partition table.
type Layout struct {
	Scheme    string // mbr or gpt
	Grown     int    // 1-based number of the grown partition, 0 if none
	GrownTo   int64  // its new size in bytes
	SeedOff   int64  // byte offset of the seed partition
	SeedPart  int    // its number
	Backup    []byte // GPT backup entries and header, written at BackupOff
	BackupOff int64
}

// seedStart is where the seed partition begins on a disk of n sectors,
// leaving room for GPT's backup.
func seedStart(diskSectors int64) int64 {
	return (diskSectors - 34 - seedSize/sector) / alignSects * alignSects
}

// maxImage is the largest image that fits a disk, before the seed.
func maxImage(diskSize int64) int64 { return seedStart(diskSize/sector) * sector }

// editTable rewrites the partition table in head for a disk of diskSize
// bytes.
func editTable(head []byte, diskSize int64) (Layout, error) {
	if len(head) < headSize || !bytes.Equal(head[510:512], []byte{0x55, 0xaa}) {
		return Layout{}, errNoPartitions
	}
	for i := 0; i < 4; i++ {
		if head[446+16*i+4] == 0xee {
			return editGPT(head, diskSize)
		}
	}
	return editMBR(head, diskSize)
}

func editMBR(head []byte, diskSize int64) (Layout, error) {
	sects := diskSize / sector
	if sects > 0xffffffff {
		sects = 0xffffffff // MBR addresses 2 TiB; the rest stays unused
	}
	seed := seedStart(sects)
	l := Layout{Scheme: "mbr", SeedOff: seed * sector}
	last, free := -1, -1
	var lastEnd int64
	for i := 0; i < 4; i++ {
		e := head[446+16*i:]
		typ, start, n := e[4], int64(binary.LittleEndian.Uint32(e[8:])), int64(binary.LittleEndian.Uint32(e[12:]))
		if typ == 0 || n == 0 {
			if free < 0 {
				free = i
			}
			continue
		}
		if start+n > seed {
			return l, fmt.Errorf("partition %d ends at sector %d, past the %d the disk leaves for it", i+1, start+n, seed)
		}
		if start+n > lastEnd {
			last, lastEnd = i, start+n
		}
	}
	if last < 0 {
		return l, errNoPartitions
	}
	if free < 0 {
		return l, errors.New("no free MBR slot for the seed partition")
	}
	e := head[446+16*last:]
	switch e[4] {
	case 0x05, 0x0f, 0x85: // extended: the logical partitions inside do not grow
	default:
		start := int64(binary.LittleEndian.Uint32(e[8:]))
		binary.LittleEndian.PutUint32(e[12:], uint32(seed-start))
		copy(e[1:4], []byte{0xfe, 0xff, 0xff})
		copy(e[5:8], []byte{0xfe, 0xff, 0xff})
		l.Grown, l.GrownTo = last+1, (seed-start)*sector
	}
	s := head[446+16*free:]
	for i := range 16 {
		s[i] = 0
	}
	copy(s[1:4], []byte{0xfe, 0xff, 0xff})
	s[4] = 0x83
	copy(s[5:8], []byte{0xfe, 0xff, 0xff})
	binary.LittleEndian.PutUint32(s[8:], uint32(seed))
	binary.LittleEndian.PutUint32(s[12:], uint32(seedSize/sector))
	l.SeedPart = free + 1
	return l, nil
}

func editGPT(head []byte, diskSize int64) (Layout, error) {
	sects := diskSize / sector
	h := head[sector : 2*sector]
	if !bytes.Equal(h[:8], gptSig) {
		return Layout{}, errors.New("protective MBR but no GPT header")
	}
	le := binary.LittleEndian
	hdrSize := le.Uint32(h[12:])
	entLBA, num, size := int64(le.Uint64(h[72:])), int64(le.Uint32(h[80:])), int64(le.Uint32(h[84:]))
	if hdrSize < 92 || hdrSize > sector || size < 128 || entLBA < 2 || entLBA*sector+num*size > headSize {
		return Layout{}, errors.New("GPT header out of the ordinary; not editing it")
	}
	entries := head[entLBA*sector : entLBA*sector+num*size]
	if crc32.ChecksumIEEE(entries) != le.Uint32(h[88:]) {
		return Layout{}, errors.New("GPT entries fail their checksum")
	}
	entSects := (num*size + sector - 1) / sector
	seed := seedStart(sects)
	l := Layout{Scheme: "gpt", SeedOff: seed * sector}
	last, free := -1, -1
	var lastEnd int64
	for i := int64(0); i < num; i++ {
		e := entries[i*size:]
		if bytes.Equal(e[:16], make([]byte, 16)) {
			if free < 0 {
				free = int(i)
			}
			continue
		}
		end := int64(le.Uint64(e[40:]))
		if end >= seed {
			return l, fmt.Errorf("partition %d ends at sector %d, past the %d the disk leaves for it", i+1, end, seed)
		}
		if end > lastEnd {
			last, lastEnd = int(i), end
		}
	}
	if last < 0 {
		return l, errNoPartitions
	}
	if free < 0 {
		return l, errors.New("no free GPT entry for the seed partition")
	}
	e := entries[int64(last)*size:]
	le.PutUint64(e[40:], uint64(seed-1))
	l.Grown, l.GrownTo = last+1, (seed-int64(le.Uint64(e[32:])))*sector
	s := entries[int64(free)*size : int64(free+1)*size]
	clear(s)
	copy(s[:16], linuxDataGUID[:])
	rand.Read(s[16:32])
	s[16+7] = s[16+7]&0x0f | 0x40 // version 4
	s[16+8] = s[16+8]&0x3f | 0x80
	le.PutUint64(s[32:], uint64(seed))
	le.PutUint64(s[40:], uint64(seed+seedSize/sector-1))
	for i, c := range utf16.Encode([]rune("cidata")) {
		le.PutUint16(s[56+2*i:], c)
	}
	l.SeedPart = free + 1

	backupEnt := sects - 1 - entSects
	le.PutUint64(h[32:], uint64(sects-1))     // alternate header
	le.PutUint64(h[48:], uint64(backupEnt-1)) // last usable
	le.PutUint32(h[88:], crc32.ChecksumIEEE(entries))
	sealHeader(h[:hdrSize])
	// Protective MBR covers the disk.
	pm := head[446:]
	le.PutUint32(pm[12:], uint32(min(sects-1, 0xffffffff)))

	backup := make([]byte, (entSects+1)*sector)
	copy(backup, entries)
	bh := backup[entSects*sector:]
	copy(bh, h)
	le.PutUint64(bh[24:], uint64(sects-1))
	le.PutUint64(bh[32:], 1)
	le.PutUint64(bh[72:], uint64(backupEnt))
	sealHeader(bh[:hdrSize])
	l.Backup, l.BackupOff = backup, backupEnt*sector
	return l, nil
}

func sealHeader(h []byte) {
	binary.LittleEndian.PutUint32(h[16:], 0)
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
}
