package cpio

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// WalkInitramfs calls each for every member of an initramfs image: newc
// archives, plain or gzip, zstd or xz compressed, concatenated as the
// kernel reads them (early microcode first).
func WalkInitramfs(p string, each func(Entry) error) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	for {
		magic, err := br.Peek(6)
		if len(magic) == 0 && err == io.EOF {
			return nil
		}
		switch {
		case bytes.HasPrefix(magic, []byte("0707")):
			if err := ReadArchive(br, each); err != nil {
				return err
			}
			continue
		case len(magic) > 0 && magic[0] == 0: // padding between archives
			br.ReadByte()
			continue
		}
		var r io.Reader
		switch {
		case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
			r, err = gzip.NewReader(br)
		case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
			var d *zstd.Decoder
			d, err = zstd.NewReader(br)
			r = d
		case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
			r, err = xz.NewReader(br)
		default:
			return fmt.Errorf("unknown initramfs compression (% x)", magic)
		}
		if err != nil {
			return err
		}
		// A compressed part runs to the end of the file.
		inner := bufio.NewReaderSize(r, 1<<20)
		for {
			err := ReadArchive(inner, each)
			if err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
		}
	}
}
