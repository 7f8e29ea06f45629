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
	// Made under the lock, so once RemoveAll has run no new one appears.
	active.Lock()
	defer active.Unlock()
	if active.closed {
		return nil, ErrStopping
	}
	for try := 0; ; try++ {
		s, err := lockedDir(dir)
		if err == errSwept && try < 10 {
			continue
		}
		if err != nil {
			return nil, err
		}
		if active.dirs == nil {
			active.dirs = map[*Scratch]bool{}
		}
		active.dirs[s] = true
		return s, nil
	}
}

var errSwept = errors.New("scratch directory swept before it was locked")

// lockedDir makes and locks a scratch directory. Another process's sweep may
// remove it between the mkdir and the lock; that shows as a path that no
// longer names the locked directory, and the caller tries again.
func lockedDir(dir string) (*Scratch, error) {
	d, err := os.MkdirTemp(dir, Prefix) // 0700
	if err != nil {
		return nil, err
	}
	lock, err := os.Open(d)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errSwept
		}
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		lock.Close()
		os.Remove(d)
		return nil, fmt.Errorf("lock %s: %w", d, err)
	}
	held, err1 := lock.Stat()
	now, err2 := os.Stat(d)
	if err1 != nil || err2 != nil || !os.SameFile(held, now) {
		lock.Close()
		return nil, errSwept
	}
	return &Scratch{Dir: d, lock: lock}, nil
}

func (s *Scratch) remove() {
	// A worker may still be creating files in it (on a signal): move it
	// away first so paths under s.Dir stop resolving, then remove it.
	gone := s.Dir + "-gone"
	if os.Rename(s.Dir, gone) != nil {
		gone = s.Dir
	}
	for i := 0; i < 5 && os.RemoveAll(gone) != nil; i++ {
	}
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
	// Named like the target, so a watcher can tell what it holds.
	name := filepath.Base(path)
	tmp := filepath.Join(s.Dir, name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	// Under a strict umask (bainode seed sets 077) a public file is widened
	// to its mode here, before its first byte.
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return s.Commit(name, path)
}
