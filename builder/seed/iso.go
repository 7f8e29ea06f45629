package seed

import (
	"fmt"
	"io/fs"
	"os"

	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// ISOLabel is the volume id NoCloud looks for.
const ISOLabel = "cidata"

// WriteISO writes the top-level files of files as an ISO9660 seed with Rock
// Ridge names (plain ISO9660 would mangle user-data to USER_DAT.;1) and no
// Joliet, matching what cloud-init reads on every version.
func WriteISO(path string, files fs.FS) error {
	ents, err := entries(files)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomically(path, func(img *os.File, ws string) error { return writeISO(img, ws, ents) })
}

func writeISO(img *os.File, ws string, ents []entry) error {
	var size int64 = 64 * 1024
	for _, e := range ents {
		size += int64(len(e.data)) + 2048
	}
	d, err := create(img, size)
	if err != nil {
		return err
	}
	d.LogicalBlocksize = 2048
	// go-diskfs stages files in ws, inside the private scratch directory.
	fsys, err := d.CreateFilesystem(disk.FilesystemSpec{FSType: filesystem.TypeISO9660, WorkDir: ws})
	if err != nil {
		return err
	}
	if err := copyIn(fsys, ents); err != nil {
		return err
	}
	iso, ok := fsys.(*iso9660.FileSystem)
	if !ok {
		return fmt.Errorf("go-diskfs returned %T, not an ISO9660 filesystem", fsys)
	}
	if err := iso.Finalize(iso9660.FinalizeOptions{RockRidge: true, VolumeIdentifier: ISOLabel}); err != nil {
		return err
	}
	return normalizeISO(img.Name(), Epoch())
}
