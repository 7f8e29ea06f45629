package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWriteMode(t *testing.T) {
	dir := t.TempDir()
	for _, mode := range []os.FileMode{0o600, 0o644} {
		p := filepath.Join(dir, "f"+mode.String())
		if err := Write(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want %v", p, err, fi.Mode(), mode)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, Prefix+"*")); len(left) != 0 {
		t.Errorf("scratch dirs left: %v", left)
	}
}

// TestSweep: a scratch directory in use survives a sweep; one whose owner
// is gone (its lock released, as when a process is killed) does not.
func TestSweep(t *testing.T) {
	dir := t.TempDir()
	live, err := NewScratch(dir)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := NewScratch(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(live.Dir); fi == nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("scratch dir mode: %v", fi)
	}
	os.WriteFile(filepath.Join(dead.Dir, "secret"), []byte("hash"), 0o600)
	dead.lock.Close() // what the kernel does when the owner dies
	Sweep(dir)
	if _, err := os.Stat(dead.Dir); !os.IsNotExist(err) {
		t.Errorf("abandoned scratch dir survived a sweep: %v", err)
	}
	if _, err := os.Stat(live.Dir); err != nil {
		t.Errorf("a sweep removed a scratch dir in use: %v", err)
	}
	live.Close()
	if _, err := os.Stat(live.Dir); !os.IsNotExist(err) {
		t.Errorf("Close left %s", live.Dir)
	}
	RemoveAll()
	if _, err := NewScratch(dir); err != ErrStopping {
		t.Errorf("NewScratch after RemoveAll: %v, want ErrStopping", err)
	}
}

// A file being written has its final mode from its first byte, even under
// umask 077, and nothing is at the path until Commit; Abort leaves nothing.
func TestCreate(t *testing.T) {
	// TestSweep's RemoveAll stops this process's writes; start again.
	active.Lock()
	active.closed = false
	active.Unlock()
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "payload.img")
	f, err := Create(p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := f.Stat(); err != nil || fi.Mode().Perm() != 0o644 || fi.Size() != 0 {
		t.Errorf("temp file before its first byte: %v %v, want 0644 and empty", fi.Mode(), err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("the path exists before Commit: %v", err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "data" {
		t.Errorf("after Commit: %q %v", b, err)
	}
	g, err := Create(filepath.Join(dir, "other"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	g.Write([]byte("half"))
	g.Abort()
	g.Abort() // twice is fine
	if des, _ := os.ReadDir(dir); len(des) != 1 || des[0].Name() != "payload.img" {
		t.Errorf("after Abort the directory holds %v", des)
	}
}
