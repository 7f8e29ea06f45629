package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/lablup/bainode/builder/atomicfile"
)

// writeFile writes data to path through a temp file created with mode in a
// private scratch directory, then a rename, so a reader never sees half a
// file and nobody else can read a secret while it is written.
func writeFile(path string, data []byte, mode os.FileMode) error {
	return atomicfile.Write(path, data, mode)
}

// removeScratchOnSignal makes SIGINT and SIGTERM remove every scratch
// directory (half-built files and go-diskfs workspaces) before exiting, for
// commands that have no graceful stop of their own. The returned func undoes it.
func removeScratchOnSignal() func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			atomicfile.RemoveAll()
			fmt.Fprintf(os.Stderr, "bainode: %v: stopped, temp files removed\n", sig)
			os.Exit(128 + int(sig.(syscall.Signal)))
		case <-done:
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// mkdirPublic is os.MkdirAll with 0755 directories whatever the umask: they
// hold no secret themselves (the files in them carry their own modes).
func mkdirPublic(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if err := mkdirPublic(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil
		}
		return err
	}
	return os.Chmod(dir, 0o755)
}
