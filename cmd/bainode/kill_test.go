package main

import (
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/atomicfile"
)

// A hash of "secretpw"; the kill test looks for it in readable files.
const plantedHash = "$6$jDFqomxRvnMq3wcL$tMzRSPnYayAADibMtCZr7tL2OfL4jqJDAE96VekrjIcD/vdEZqdaE/ulDonDWbd2GcycB5DbXIvhv35y7XilP."

func bigSite(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\noperator:\n  password_hash: %q\nnodes:\n", plantedHash)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - hostname: n%03d\n    ip: 10.1.%d.%d\n", i, i/200, i%200+10)
	}
	p := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// public names the files that never hold a secret.
var public = map[string]bool{"meta-data": true, "network-config": true, "vendor-data": true}

// exposed reports what in root another user could read that may hold the
// secret: a scratch directory not 0700, or any file but the public ones
// with group or other bits.
func exposed(root string) []string {
	var bad []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // removed while walking
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		m := fi.Mode()
		rel, _ := filepath.Rel(root, p)
		inScratch := strings.Contains(rel, atomicfile.Prefix)
		switch {
		case d.IsDir() && strings.HasPrefix(d.Name(), atomicfile.Prefix) && m.Perm() != 0o700:
			bad = append(bad, fmt.Sprintf("%s %v", rel, m))
		case !d.IsDir() && inScratch && !public[d.Name()] && m.Perm()&0o077 != 0:
			bad = append(bad, fmt.Sprintf("%s %v", rel, m))
		case !d.IsDir() && !inScratch && !public[d.Name()] && m.Perm()&0o077 != 0:
			// user-data and the seed hold the hash; any temp file may.
			bad = append(bad, fmt.Sprintf("%s %v", rel, m))
		}
		return nil
	})
	return bad
}

// watch polls root until stop is closed and returns everything exposed it saw.
func watch(root string, stop chan struct{}) func() []string {
	var mu sync.Mutex
	seen := map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			for _, s := range exposed(root) {
				mu.Lock()
				seen[s] = true
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	return func() []string {
		<-done
		var out []string
		for s := range seen {
			out = append(out, s)
		}
		return out
	}
}

// TestKillSeed kills 'bainode seed' on a large site at random moments, with
// SIGKILL and SIGTERM, while a second goroutine watches the output directory.
// Nothing holding the hash may be readable by others at any moment; SIGTERM
// leaves no scratch directory, SIGKILL leaves only 0700 ones, and the next
// run sweeps them.
func TestKillSeed(t *testing.T) {
	site := bigSite(t, 150)
	out := filepath.Join(t.TempDir(), "out")
	shmBefore, _ := os.ReadDir("/dev/shm")

	start := time.Now()
	if _, errs, code := bainode(t, "", "seed", "--config", site, "-o", out); code != 0 {
		t.Fatalf("full run: exit %d: %s", code, errs)
	}
	full := time.Since(start)
	os.RemoveAll(out)

	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	iters := 6
	for i := 0; i < iters; i++ {
		sig := syscall.SIGKILL
		if i%3 == 2 {
			sig = syscall.SIGTERM
		}
		stop := make(chan struct{})
		os.MkdirAll(out, 0o755)
		result := watch(out, stop)
		before, _ := filepath.Glob(filepath.Join(out, "*", atomicfile.Prefix+"*"))
		cmd := exec.Command(bainodeBin, "seed", "--config", site, "-o", out)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.Int63n(int64(full)))
		time.Sleep(delay)
		cmd.Process.Signal(sig)
		err := cmd.Wait()
		close(stop)
		if bad := result(); len(bad) > 0 {
			t.Errorf("%v after %v: readable by others while running: %v", sig, delay, bad)
		}
		if bad := exposed(out); len(bad) > 0 {
			t.Errorf("%v after %v: left readable: %v", sig, delay, bad)
		}
		left, _ := filepath.Glob(filepath.Join(out, "*", atomicfile.Prefix+"*"))
		if sig == syscall.SIGTERM && err != nil {
			if added := newNames(before, left); len(added) > 0 {
				t.Errorf("SIGTERM after %v left scratch dirs: %v", delay, added)
			}
		}
		t.Logf("%v after %v: %v, %d scratch dir(s) left", sig, delay, err, len(left))
	}
	// The next run sweeps whatever SIGKILL left.
	if _, errs, code := bainode(t, "", "seed", "--config", site, "-o", out); code != 0 {
		t.Fatalf("run after kills: exit %d: %s", code, errs)
	}
	if left, _ := filepath.Glob(filepath.Join(out, "*", atomicfile.Prefix+"*")); len(left) > 0 {
		t.Errorf("scratch dirs left after a full run: %v", left)
	}
	shmAfter, _ := os.ReadDir("/dev/shm")
	if len(shmAfter) > len(shmBefore) {
		for _, e := range shmAfter {
			if strings.Contains(e.Name(), "iso") || strings.HasPrefix(e.Name(), "bainode") {
				t.Errorf("/dev/shm/%s appeared: seeds must not stage files there", e.Name())
			}
		}
	}
}

func newNames(before, after []string) []string {
	old := map[string]bool{}
	for _, b := range before {
		old[b] = true
	}
	var out []string
	for _, a := range after {
		if !old[a] {
			out = append(out, a)
		}
	}
	return out
}
