//go:build unix

package fetch

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lock takes the cache's lock file for a Download: two processes writing the
// same partial file would corrupt it (the checksum would catch it, but only
// after a wasted download).
func (c *Cache) lock(rep reporter) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(c.root, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	fd := int(f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		rep.note(fmt.Sprintf("waiting for another bainode fetch using %s", c.root))
		if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("cache: lock %s: %w", f.Name(), err)
		}
	}
	return func() {
		syscall.Flock(fd, syscall.LOCK_UN)
		f.Close()
	}, nil
}
