package iso

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"time"
)

func hashOf(b []byte) [32]byte { return sha256.Sum256(b) }

// normalize makes a go-diskfs volume reproducible. go-diskfs stamps the
// volume descriptor and the boot catalog with the current time and copies
// ctime, link counts and owners from its workspace into Rock Ridge; bainode
// clamps every time to epoch and writes fixed owners and link counts.
func normalize(f *os.File, epoch time.Time, volumeID string) error {
	pvd, err := readBlock(f, 16)
	if err != nil {
		return err
	}
	for i := range 32 {
		pvd[40+i] = ' '
	}
	copy(pvd[40:72], volumeID)
	stamp := []byte(epoch.UTC().Format("20060102150405") + "00\x00")
	for _, off := range []int{813, 830, 864} { // creation, modification, effective
		copy(pvd[off:off+17], stamp)
	}
	copy(pvd[847:864], "0000000000000000\x00") // no expiration
	root := pvd[156 : 156+34]
	w := &walker{f: f, epoch: epoch.UTC(), seen: map[uint32]bool{}}
	w.clamp7(root[18:25]) // the root's record in the descriptor
	if _, err := f.WriteAt(pvd, 16*Block); err != nil {
		return err
	}
	return w.dir(binary.LittleEndian.Uint32(root[2:6]), binary.LittleEndian.Uint32(root[10:14]))
}

type walker struct {
	f     *os.File
	epoch time.Time
	seen  map[uint32]bool
}

func (w *walker) dir(lba, size uint32) error {
	if w.seen[lba] {
		return nil
	}
	w.seen[lba] = true
	buf := make([]byte, (int(size)+Block-1)/Block*Block)
	if _, err := w.f.ReadAt(buf, int64(lba)*Block); err != nil {
		return fmt.Errorf("read directory at block %d: %w", lba, err)
	}
	var subdirs [][2]uint32
	for off := 0; off < len(buf); {
		n := int(buf[off])
		if n == 0 { // records do not cross blocks
			off = (off/Block + 1) * Block
			continue
		}
		if off+n > len(buf) || n < 34 {
			return fmt.Errorf("directory at block %d: bad record at %d", lba, off)
		}
		rec := buf[off : off+n]
		w.clamp7(rec[18:25])
		isDir := rec[25]&2 != 0
		nameLen := int(rec[32])
		su := 33 + nameLen
		if nameLen%2 == 0 {
			su++
		}
		if su < n {
			if err := w.susp(rec[su:], isDir); err != nil {
				return err
			}
		}
		name := rec[33 : 33+nameLen]
		if isDir && !(nameLen == 1 && (name[0] == 0 || name[0] == 1)) {
			subdirs = append(subdirs, [2]uint32{binary.LittleEndian.Uint32(rec[2:6]), binary.LittleEndian.Uint32(rec[10:14])})
		}
		off += n
	}
	if _, err := w.f.WriteAt(buf, int64(lba)*Block); err != nil {
		return err
	}
	for _, d := range subdirs {
		if err := w.dir(d[0], d[1]); err != nil {
			return err
		}
	}
	return nil
}

// susp walks the SUSP entries of one record, following continuation areas.
func (w *walker) susp(b []byte, isDir bool) error {
	for len(b) >= 4 {
		n := int(b[2])
		if n < 4 || n > len(b) {
			return nil
		}
		e := b[:n]
		switch string(e[:2]) {
		case "TF":
			w.tf(e)
		case "PX":
			if n >= 36 {
				if !isDir {
					putBoth32(e[12:20], 1)
				}
				putBoth32(e[20:28], 0)
				putBoth32(e[28:36], 0)
			}
		case "CE":
			if n >= 28 {
				lba := binary.LittleEndian.Uint32(e[4:8])
				off := binary.LittleEndian.Uint32(e[12:16])
				size := binary.LittleEndian.Uint32(e[20:24])
				area := make([]byte, size)
				pos := int64(lba)*Block + int64(off)
				if _, err := w.f.ReadAt(area, pos); err != nil {
					return err
				}
				if err := w.susp(area, isDir); err != nil {
					return err
				}
				if _, err := w.f.WriteAt(area, pos); err != nil {
					return err
				}
			}
		case "ST":
			return nil
		}
		b = b[n:]
	}
	return nil
}

func (w *walker) tf(e []byte) {
	flags := e[4]
	long := flags&0x80 != 0
	p := 5
	for bit := 0; bit < 7; bit++ {
		if flags&(1<<bit) == 0 {
			continue
		}
		if long {
			if p+17 > len(e) {
				return
			}
			t, err := time.Parse("20060102150405", string(e[p:p+14]))
			if err == nil && t.After(w.epoch) {
				copy(e[p:p+17], w.epoch.Format("20060102150405")+"00\x00")
			}
			p += 17
			continue
		}
		if p+7 > len(e) {
			return
		}
		w.clamp7(e[p : p+7])
		p += 7
	}
}

// clamp7 clamps a 7-byte directory record time to the epoch.
func (w *walker) clamp7(b []byte) {
	t := time.Date(1900+int(b[0]), time.Month(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5]), 0,
		time.FixedZone("", int(int8(b[6]))*15*60))
	if !t.After(w.epoch) {
		return
	}
	e := w.epoch
	b[0], b[1], b[2] = byte(e.Year()-1900), byte(e.Month()), byte(e.Day())
	b[3], b[4], b[5], b[6] = byte(e.Hour()), byte(e.Minute()), byte(e.Second()), 0
}

func putBoth32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b[0:4], v)
	binary.BigEndian.PutUint32(b[4:8], v)
}
