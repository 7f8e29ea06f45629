package deploy

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/klauspost/compress/zstd"
)

const chunk = 4 << 20

var zeros = make([]byte, chunk)

func writeZeros(f *os.File, off, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}

// wipe makes the disk unbootable before anything else is written: the
// first and last MiB hold every partition table (MBR, GPT and its backup)
// and boot code. A deploy that stops anywhere after this leaves a disk no
// firmware boots.
func wipe(f *os.File, size int64, block bool) error {
	if err := writeZeros(f, 0, min(size, headSize)); err != nil {
		return err
	}
	if size > 2*headSize {
		if err := writeZeros(f, size-headSize, headSize); err != nil {
			return err
		}
	}
	return f.Sync()
}

// streamed is what writeStream learned.
type streamed struct {
	head    []byte // the image's first MiB, not yet written
	size    int64  // uncompressed image size
	resumes int
}

// writeStream decompresses the image from r onto f, all but its first MiB,
// which it returns. It refuses an image larger than limit and checks the
// compressed stream's sha256 and length at the end.
func writeStream(f *os.File, r imageSource, limit int64, block bool, wantSHA string, logf func(string, ...any)) (streamed, error) {
	var st streamed
	dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(min(4, runtime.NumCPU())), zstd.WithDecoderLowmem(false))
	if err != nil {
		return st, err
	}
	defer dec.Close()
	buf := make([]byte, chunk)
	var off int64
	next := int64(0)
	for {
		n, err := io.ReadFull(dec, buf)
		if n > 0 {
			if off+int64(n) > limit {
				return st, fmt.Errorf("the image is larger than the disk allows (%d bytes with the seed partition)", limit)
			}
			p := buf[:n]
			if off == 0 {
				if n < headSize {
					return st, fmt.Errorf("image of %d bytes is too small to hold a partition table", n)
				}
				st.head = bytes.Clone(p[:headSize])
				p = p[headSize:]
			}
			at := off + int64(n-len(p))
			if isZero(p) {
				err = zeroRange(f, at, int64(len(p)), block)
			} else {
				_, err = f.WriteAt(p, at)
			}
			if err != nil {
				return st, fmt.Errorf("writing the disk at byte %d: %w", at, err)
			}
			off += int64(n)
			if done, total := r.progress(); done >= next {
				logf("written %d MiB (%d%% of the compressed image)", off>>20, 100*done/max(total, 1))
				next += max(total/10, 1)
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			done, _ := r.progress()
			return st, fmt.Errorf("decompressing the image at byte %d of the compressed stream: %w", done, err)
		}
	}
	st.size, st.resumes = off, r.resumed()
	if done, total := r.progress(); done != total {
		return st, fmt.Errorf("the image stream ended at byte %d of %d", done, total)
	}
	if got := hex.EncodeToString(r.digest()); got != wantSHA {
		return st, fmt.Errorf("checksum mismatch: the image's sha256 is %s, the bake manifest says %s", got, wantSHA)
	}
	return st, nil
}

func isZero(p []byte) bool { return bytes.Equal(p, zeros[:len(p)]) }
