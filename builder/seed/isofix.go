package seed

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"
)

// The primary volume descriptor sits in sector 16; its four 17-byte dates
// (creation, modification, expiration, effective) start at byte 813, and
// the root directory record at byte 156.
const (
	sector      = 2048
	pvdOffset   = 16 * sector
	pvdDates    = 813
	pvdDateSize = 17
	pvdRoot     = 156
)

// normalizeISO stamps every date in an ISO9660 image with t: the volume
// descriptor's dates, each directory record's recording date and the Rock
// Ridge TF times. go-diskfs takes them from the clock and from the staging
// files' ctime, which no one can set, so seeds would differ run to run.
func normalizeISO(path string, t time.Time) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(b) < pvdOffset+sector || b[pvdOffset] != 1 || string(b[pvdOffset+1:pvdOffset+6]) != "CD001" {
		return fmt.Errorf("no primary volume descriptor at sector 16")
	}
	t = t.UTC()
	long := []byte(t.Format("20060102150405") + "00\x00")
	short := []byte{byte(t.Year() - 1900), byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 0}
	for i := 0; i < 4; i++ {
		d := long
		if i == 2 { // expiration: "not specified"
			d = []byte("0000000000000000\x00")
		}
		copy(b[pvdOffset+pvdDates+i*pvdDateSize:], d)
	}
	root := b[pvdOffset+pvdRoot : pvdOffset+pvdRoot+34]
	copy(root[18:25], short)
	seen := map[uint32]bool{}
	if err := stampDir(b, root, short, long, seen); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// stampDir walks the directory extent that rec points at.
func stampDir(b, rec, short, long []byte, seen map[uint32]bool) error {
	le := binary.LittleEndian
	lba, size := le.Uint32(rec[2:]), le.Uint32(rec[10:])
	if seen[lba] {
		return nil
	}
	seen[lba] = true
	start, end := int(lba)*sector, int(lba)*sector+int(size)
	if end > len(b) {
		return fmt.Errorf("directory extent runs past the image")
	}
	for off := start; off < end; {
		n := int(b[off])
		if n == 0 { // records do not cross sectors: skip to the next one
			off = (off/sector + 1) * sector
			continue
		}
		r := b[off : off+n]
		copy(r[18:25], short)
		nameLen := int(r[32])
		su := 33 + nameLen
		if su%2 == 1 {
			su++
		}
		stampSUSP(r[su:], short, long)
		isDir := r[25]&2 != 0
		self := nameLen == 1 && (r[33] == 0 || r[33] == 1)
		if isDir && !self {
			if err := stampDir(b, r, short, long, seen); err != nil {
				return err
			}
		}
		off += n
	}
	return nil
}

// stampSUSP rewrites the times in Rock Ridge TF entries.
func stampSUSP(su, short, long []byte) {
	for len(su) >= 4 {
		n := int(su[2])
		if n < 4 || n > len(su) {
			return
		}
		if string(su[:2]) == "TF" {
			flags := su[4]
			w := 7
			if flags&0x80 != 0 {
				w = 17
			}
			d := short
			if w == 17 {
				d = long
			}
			for p := 5; p+w <= n; p += w {
				copy(su[p:p+w], d)
			}
		}
		su = su[n:]
	}
}
