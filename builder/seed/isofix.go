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
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// Only the volume descriptor and the directory extents change: patch
	// them in place instead of rewriting the whole image.
	pvd := make([]byte, sector)
	if _, err := f.ReadAt(pvd, pvdOffset); err != nil || pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
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
		copy(pvd[pvdDates+i*pvdDateSize:], d)
	}
	root := pvd[pvdRoot : pvdRoot+34]
	copy(root[18:25], short)
	if _, err := f.WriteAt(pvd, pvdOffset); err != nil {
		return err
	}
	return stampDir(f, root, short, long, map[uint32]bool{})
}

// stampDir walks the directory extent that rec points at.
func stampDir(f *os.File, rec, short, long []byte, seen map[uint32]bool) error {
	le := binary.LittleEndian
	lba, size := le.Uint32(rec[2:]), le.Uint32(rec[10:])
	if seen[lba] {
		return nil
	}
	seen[lba] = true
	if size > 1<<20 {
		return fmt.Errorf("directory extent of %d bytes is not a seed's", size)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, int64(lba)*sector); err != nil {
		return fmt.Errorf("directory extent: %w", err)
	}
	end := len(b)
	for off := 0; off < end; {
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
			if err := stampDir(f, r, short, long, seen); err != nil {
				return err
			}
		}
		off += n
	}
	_, err := f.WriteAt(b, int64(lba)*sector)
	return err
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
