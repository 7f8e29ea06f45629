package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
	src := &mediumReader{r: io.NopCloser(bytes.NewReader(zst)), size: int64(len(zst)), sum: sha256.New()}
	sum := sha256.Sum256(zst)
	_, err = writeStream(f, src, 64<<20, false, hex.EncodeToString(sum[:]), t.Logf)
	if err == nil || !strings.Contains(err.Error(), "writing the disk at byte 1048576") {
		t.Fatalf("err %v, want a write error at byte 1048576", err)
	}
}
