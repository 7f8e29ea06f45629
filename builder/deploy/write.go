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
// compressed stream's sha256 and length at the end. A writer goroutine
// writes one chunk while the next is decompressed, as the processes of
// curl | zstd -d | dd overlap.
func writeStream(f *os.File, r imageSource, limit int64, block bool, wantSHA string, logf func(string, ...any)) (streamed, error) {
	var st streamed
	dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(min(4, runtime.NumCPU())), zstd.WithDecoderLowmem(false))
	if err != nil {
		return st, err
	}
	defer dec.Close()
	w := startWriter(f, block)
	defer w.stop()
	var off int64
	next := int64(0)
	for {
		buf, werr := w.buffer()
		if werr != nil {
			return st, werr
		}
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
			w.write(buf, p, off+int64(n-len(p)))
			off += int64(n)
			if done, total := r.progress(); done >= next {
				logf("written %d MiB (%d%% of the compressed image)", off>>20, 100*done/max(total, 1))
				next += max(total/10, 1)
			}
		} else {
			w.free <- buf
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			done, _ := r.progress()
			return st, fmt.Errorf("decompressing the image at byte %d of the compressed stream: %w", done, err)
		}
	}
	if err := w.stop(); err != nil {
		return st, err
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

// writer writes chunks to the disk in its own goroutine; buffers go round
// between it and the decompressing side.
type writer struct {
	work  chan piece
	free  chan []byte
	done  chan struct{}
	err   error // the write error that stopped it; read after done
	ended bool
}

type piece struct {
	buf, p []byte // p within buf
	at     int64
}

const writeBuffers = 3

func startWriter(f *os.File, block bool) *writer {
	w := &writer{work: make(chan piece, writeBuffers), free: make(chan []byte, writeBuffers), done: make(chan struct{})}
	for range writeBuffers {
		w.free <- make([]byte, chunk)
	}
	go func() {
		defer close(w.done)
		// At most writeBuffers pieces are ever queued, so the decompressing
		// side never blocks sending one after this returns.
		for pc := range w.work {
			var err error
			if isZero(pc.p) {
				err = zeroRange(f, pc.at, int64(len(pc.p)), block)
			} else {
				_, err = f.WriteAt(pc.p, pc.at)
			}
			if err != nil {
				w.err = fmt.Errorf("writing the disk at byte %d: %w", pc.at, err)
				return
			}
			w.free <- pc.buf
		}
	}()
	return w
}

// buffer returns a free buffer, or the write error that stopped the writer.
func (w *writer) buffer() ([]byte, error) {
	select {
	case b := <-w.free:
		return b, nil
	case <-w.done:
		return nil, w.err
	}
}

func (w *writer) write(buf, p []byte, at int64) { w.work <- piece{buf, p, at} }

// stop waits until every chunk is written and returns the first error.
func (w *writer) stop() error {
	if !w.ended {
		w.ended = true
		close(w.work)
	}
	<-w.done
	return w.err
}

func isZero(p []byte) bool { return bytes.Equal(p, zeros[:len(p)]) }
