package vm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// console collects the guest's serial output and wakes up waiters on every
// write.
type console struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on each write
	w       io.Writer
}

func newConsole(w io.Writer) *console {
	return &console{changed: make(chan struct{}), w: w}
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.buf.Write(p)
	close(c.changed)
	c.changed = make(chan struct{})
	w := c.w
	c.mu.Unlock()
	if w != nil {
		w.Write(p) // the caller's writer failing must not stop the guest
	}
	return len(p), nil
}

// since returns the output from offset from on, the output's length and a
// channel closed by the next write.
func (c *console) since(from int) (string, int, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buf.Bytes()
	return string(b[min(from, len(b)):]), len(b), c.changed
}

func (c *console) String() string {
	s, _, _ := c.since(0)
	return s
}

// tailBuffer keeps the last max bytes written to it (QEMU's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// ovmfPairs are Debian's OVMF firmware images with their matching variable
// stores (package ovmf), newest layout first.
var ovmfPairs = [][2]string{
	{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
	{"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
}

// FindOVMF returns the installed UEFI firmware image and its variable store
// template (copy the template before use: the firmware writes to it).
func FindOVMF() (code, vars string, err error) {
	for _, p := range ovmfPairs {
		if fileExists(p[0]) && fileExists(p[1]) {
			return p[0], p[1], nil
		}
	}
	return "", "", errors.New("no OVMF firmware found (Debian package ovmf)")
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// DetectFormat tells a qcow2 image (by its magic) from a raw one.
func DetectFormat(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if string(magic) == "QFI\xfb" {
		return FormatQCOW2, nil
	}
	return FormatRaw, nil
}
