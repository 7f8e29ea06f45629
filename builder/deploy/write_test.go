package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// memSource is an imageSource over bytes.
type memSource struct {
	*bytes.Reader
	all []byte
}

func (m memSource) progress() (int64, int64) { return m.Size() - int64(m.Len()), m.Size() }
func (m memSource) digest() []byte           { s := sha256.Sum256(m.all); return s[:] }
func (m memSource) resumed() int             { return 0 }

// TestWriteStreamWriteError: a disk that refuses writes fails the deploy
// with the offset, through the writer goroutine.
func TestWriteStreamWriteError(t *testing.T) {
	_, zst := testImage(t)
	path := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path) // read-only: every write fails
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src := memSource{bytes.NewReader(zst), zst}
	sum := sha256.Sum256(zst)
	_, err = writeStream(f, src, 64<<20, false, hex.EncodeToString(sum[:]), t.Logf)
	if err == nil || !strings.Contains(err.Error(), "writing the disk at byte 1048576") {
		t.Fatalf("err %v, want a write error at byte 1048576", err)
	}
}
