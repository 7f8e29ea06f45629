package dqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockName is the file a running member holds an exclusive flock on, so
// that a second bainoded, or Recover, cannot use its directory meanwhile.
const lockName = "bainoded.lock"

// ErrRunning means another process uses the data directory.
var ErrRunning = errors.New("data directory in use by a running bainoded")

func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dqlite: %w", err)
	}
	// The lock goes with the process, even on SIGKILL.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("dqlite: %s: %w; stop it first", dir, ErrRunning)
		}
		return nil, fmt.Errorf("dqlite: lock %s: %w", path, err)
	}
	return f, nil
}
