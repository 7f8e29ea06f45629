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

// File is a file being written for path; nothing appears at path until
// Commit. Write to it as to any *os.File (go-diskfs writes file systems
// into one).
type File struct {
	*os.File
	s    *Scratch
	name string
	path string
}

// Create starts writing path with mode: the temp file is created with mode
// inside a 0700 scratch directory beside path, and widened past the umask
// before its first byte. Commit renames it into place; Abort drops it.
func Create(path string, mode os.FileMode) (*File, error) {
	s, err := NewScratch(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	// Named like the target, so a watcher can tell what it holds.
	name := filepath.Base(path)
	f, err := os.OpenFile(filepath.Join(s.Dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		s.Close()
		return nil, err
	}
	// Under a strict umask (bainode seed sets 077) a public file is widened
	// to its mode here, before its first byte.
	if err := f.Chmod(mode); err != nil {
		f.Close()
		s.Close()
		return nil, err
	}
	return &File{File: f, s: s, name: name, path: path}, nil
}

// Commit closes the file and renames it to its path. The caller calls Sync
// first when the content must survive a crash.
func (f *File) Commit() error {
	defer f.s.Close()
	if err := f.File.Close(); err != nil {
		return err
	}
	return f.s.Commit(f.name, f.path)
}

// Abort closes and removes the file; after Commit it does nothing.
func (f *File) Abort() {
	f.File.Close()
	f.s.Close()
}

// Write writes data to path with mode: the temp file is created with mode
// inside a 0700 scratch directory, then renamed into place.
func Write(path string, data []byte, mode os.FileMode) error {
	f, err := Create(path, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}
