// Package atomicfile writes files that may hold secrets: nothing is ever
// half-written and nothing is readable by others at any moment.
//
// Every write happens in a scratch directory beside the target: a 0700
// directory named ".bainode-tmp-*" that holds the temp file (created with its
// final mode) and any tool workspace, and is locked (flock) while in use. The
// finished file is renamed into place and the directory removed. SIGKILL can
// leave a scratch directory behind; it is 0700, so nothing in it is readable
// by another user, and the next write to the same directory removes every
// scratch directory whose lock is free. SIGINT and SIGTERM handlers call
// RemoveAll before exiting.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Prefix names scratch directories; a sweep removes the unlocked ones.
const Prefix = ".bainode-tmp-"

// newPrefix names a scratch directory before it is locked, so a sweep never
// sees it unlocked.
const newPrefix = ".bainode-new-"

// Scratch is a private directory for building one file.
type Scratch struct {
	Dir  string
	lock *os.File
}

var active struct {
	sync.Mutex
	dirs   map[*Scratch]bool
	closed bool
}

// ErrStopping is returned once RemoveAll has run.
var ErrStopping = errors.New("stopping: scratch directories removed")

// NewScratch makes a locked 0700 scratch directory in dir, after removing
// the stale ones that killed runs left there.
func NewScratch(dir string) (*Scratch, error) {
	Sweep(dir)
	d, err := os.MkdirTemp(dir, newPrefix) // 0700
	if err != nil {
		return nil, err
	}
	lock, err := os.Open(d)
	if err != nil {
		os.Remove(d)
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		os.Remove(d)
		return nil, fmt.Errorf("lock %s: %w", d, err)
	}
	final := filepath.Join(dir, Prefix+strings.TrimPrefix(filepath.Base(d), newPrefix))
	if err := os.Rename(d, final); err != nil {
		lock.Close()
		os.Remove(d)
		return nil, err
	}
	s := &Scratch{Dir: final, lock: lock}
	active.Lock()
	defer active.Unlock()
	if active.closed {
		s.remove()
		return nil, ErrStopping
	}
	if active.dirs == nil {
		active.dirs = map[*Scratch]bool{}
	}
	active.dirs[s] = true
	return s, nil
}

func (s *Scratch) remove() {
	os.RemoveAll(s.Dir)
	s.lock.Close()
}

// Close removes the scratch directory and everything left in it.
func (s *Scratch) Close() {
	active.Lock()
	defer active.Unlock()
	if active.dirs[s] {
		delete(active.dirs, s)
		s.remove()
	}
}

// Commit renames name (inside the scratch directory) to path.
func (s *Scratch) Commit(name, path string) error {
	return os.Rename(filepath.Join(s.Dir, name), path)
}

// RemoveAll removes every scratch directory of this process and refuses new
// ones; signal handlers call it before exiting.
func RemoveAll() {
	active.Lock()
	defer active.Unlock()
	active.closed = true
	for s := range active.dirs {
		s.remove()
	}
	active.dirs = nil
}

// Sweep removes the scratch directories in dir whose lock is free, that is,
// those left by a killed process.
func Sweep(dir string) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range des {
		if !de.IsDir() || !strings.HasPrefix(de.Name(), Prefix) {
			continue
		}
		p := filepath.Join(dir, de.Name())
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.RemoveAll(p)
		}
		f.Close()
	}
}

// Write writes data to path with mode: the temp file is created with mode
// inside a 0700 scratch directory, then renamed into place.
func Write(path string, data []byte, mode os.FileMode) error {
	s, err := NewScratch(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer s.Close()
	tmp := filepath.Join(s.Dir, "file")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return s.Commit("file", path)
}
