package seed

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"
)

// normalizeFAT fixes what go-diskfs leaves in a FAT12 image: directory
// entries carry the wall clock (so seeds would differ run to run), and
// clusters that no file uses stay allocated (an empty file's, and one taken
// for the label), which fsck.fat reports. It stamps every root entry with t
// and frees every cluster that no file's chain reaches.
func normalizeFAT(path string, t time.Time) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(b) < 512 || b[510] != 0x55 || b[511] != 0xAA {
		return fmt.Errorf("no FAT boot sector")
	}
	le := binary.LittleEndian
	bps := int(le.Uint16(b[11:]))
	reserved := int(le.Uint16(b[14:]))
	nFATs := int(b[16])
	rootEntries := int(le.Uint16(b[17:]))
	fatSectors := int(le.Uint16(b[22:]))
	fatStart := reserved * bps
	rootStart := fatStart + nFATs*fatSectors*bps
	if rootStart+rootEntries*32 > len(b) {
		return fmt.Errorf("FAT layout runs past the image")
	}

	// FAT dates start in 1980.
	if min := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC); t.Before(min) {
		t = min
	}
	date := uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day())
	clock := uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2)

	fat := b[fatStart : fatStart+fatSectors*bps]
	reached := map[int]bool{}
	for i := 0; i < rootEntries; i++ {
		e := b[rootStart+i*32 : rootStart+(i+1)*32]
		if e[0] == 0 {
			break
		}
		if e[0] == 0xE5 || e[11] == 0x0F { // deleted, or a long-name entry
			continue
		}
		e[13] = 0
		le.PutUint16(e[14:], clock)
		le.PutUint16(e[16:], date)
		le.PutUint16(e[18:], date)
		le.PutUint16(e[22:], clock)
		le.PutUint16(e[24:], date)
		isFile := e[11]&0x18 == 0 // not a directory or volume label
		cl := int(le.Uint16(e[26:]))
		if isFile && le.Uint32(e[28:]) == 0 {
			le.PutUint16(e[26:], 0) // an empty file owns no cluster
			continue
		}
		for n := 0; cl >= 2 && cl < 0xFF0 && !reached[cl] && n < len(fat); n++ {
			reached[cl] = true
			cl = int(getFAT12(fat, cl))
		}
	}
	clusters := fatSectors * bps * 2 / 3
	for n := 2; n < clusters; n++ {
		if !reached[n] && getFAT12(fat, n) != 0 {
			for f := 0; f < nFATs; f++ {
				setFAT12(b[fatStart+f*fatSectors*bps:], n, 0)
			}
		}
	}
	return os.WriteFile(path, b, 0o600)
}

func getFAT12(fat []byte, n int) uint16 {
	v := binary.LittleEndian.Uint16(fat[n*3/2:])
	if n%2 == 0 {
		return v & 0x0FFF
	}
	return v >> 4
}

// setFAT12 sets cluster n's 12-bit entry in a FAT12 table.
func setFAT12(fat []byte, n int, v uint16) {
	off := n * 3 / 2
	cur := binary.LittleEndian.Uint16(fat[off:])
	if n%2 == 0 {
		cur = cur&0xF000 | v&0x0FFF
	} else {
		cur = cur&0x000F | v<<4
	}
	binary.LittleEndian.PutUint16(fat[off:], cur)
}
