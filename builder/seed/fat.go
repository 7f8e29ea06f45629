package seed

import (
	"fmt"
	"io/fs"

	"os"

	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
)

// FATLabel is the label NoCloud looks for on vfat seeds.
const FATLabel = "CIDATA"

// fatMax is where FAT12 stops in go-diskfs; FAT32 is avoided on purpose since
// go-diskfs writes a short FAT table at some sizes.
const fatMax = 8 * 1024 * 1024

// WriteFAT writes the top-level files of files as a FAT12 seed labelled
// CIDATA: 128 KiB like cloud-localds -f vfat, larger when the files need it.
func WriteFAT(path string, files fs.FS) error {
	ents, err := entries(files)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var need int64
	for _, e := range ents {
		need += (int64(len(e.data))/2048 + 1) * 2048
	}
	size := int64(128 * 1024)
	for size < need*2+64*1024 {
		size *= 2
	}
	if size > fatMax {
		return fmt.Errorf("%s: %d bytes of seed files do not fit a FAT12 seed; use the iso format", path, need)
	}
	return atomically(path, func(img *os.File, _ string) error { return writeFAT(img, ents, size) })
}

func writeFAT(img *os.File, ents []entry, size int64) error {
	d, err := create(img, size)
	if err != nil {
		return err
	}
	if err := fillFAT(d, ents); err != nil {
		return err
	}
	return normalizeFAT(img.Name(), Epoch())
}

func fillFAT(d *disk.Disk, ents []entry) error {
	fsys, err := d.CreateFilesystem(disk.FilesystemSpec{FSType: filesystem.TypeFat12, VolumeLabel: FATLabel, Reproducible: true})
	if err != nil {
		return err
	}
	return copyIn(fsys, ents)
}
