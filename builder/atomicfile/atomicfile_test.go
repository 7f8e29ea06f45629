package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
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
