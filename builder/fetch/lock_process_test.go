package fetch

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/internal/testsrv"
)

// The test binary doubles as a `bainode fetch` process for
// TestFetchLockTwoProcesses: with BAINODE_FETCH_CHILD set it downloads the
// artifact given there into the cache given there and exits.
func TestMain(m *testing.M) {
	if spec := os.Getenv("BAINODE_FETCH_CHILD"); spec != "" {
		os.Exit(fetchChild(spec))
	}
	os.Exit(m.Run())
}

type childSpec struct {
	Cache string
	Art   Artifact
}

func fetchChild(spec string) int {
	var cs childSpec
	if err := json.Unmarshal([]byte(spec), &cs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	c, err := OpenCache(cs.Cache)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	o := testOptions()
	o.Progress, o.PlainProgress, o.ProgressInterval = os.Stderr, true, time.Hour
	res, err := Download(context.Background(), c, []Artifact{cs.Art}, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("fetched=%d cached=%d\n", res.Fetched, res.Cached)
	return 0
}

// Two fetch processes on one cache: the second waits for the cache lock
// (and says so) while the first downloads, then finds the file cached. The
// server sends it once, and the cache holds one whole blob.
func TestFetchLockTwoProcesses(t *testing.T) {
	body := testsrv.RandomBytes(7, 300<<10)
	var requests atomic.Int64
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		once.Do(func() { close(started) })
		<-release // the first process holds the lock until this returns
		w.Write(body)
	}))
	defer srv.Close()
	root := t.TempDir() + "/cache"
	spec, _ := json.Marshal(childSpec{Cache: root, Art: Artifact{Name: "a.bin", URL: srv.URL + "/a.bin", SHA256: testsrv.SumHex(body), Size: int64(len(body))}})

	type proc struct {
		cmd    *exec.Cmd
		out    strings.Builder
		stderr *bufio.Scanner
	}
	start := func() *proc {
		p := &proc{cmd: exec.Command(os.Args[0], "-test.run=^$")}
		p.cmd.Env = append(os.Environ(), "BAINODE_FETCH_CHILD="+string(spec))
		p.cmd.Stdout = &p.out
		e, err := p.cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		p.stderr = bufio.NewScanner(e)
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := start()
	<-started // the first process has the lock and is downloading
	second := start()
	// Read the second's stderr until it says it waits; without a lock it
	// would be blocked in a download instead, so give up after a while.
	waitedCh := make(chan bool, 1)
	var secondLog []string
	secondDone := make(chan struct{})
	go func() {
		defer close(secondDone)
		said := false
		for second.stderr.Scan() {
			secondLog = append(secondLog, second.stderr.Text())
			if !said && strings.Contains(second.stderr.Text(), "waiting for another bainode fetch using "+root) {
				said = true
				waitedCh <- true
			}
		}
		if !said {
			waitedCh <- false
		}
	}()
	select {
	case ok := <-waitedCh:
		if !ok {
			t.Error("the second fetch ended without waiting for the lock")
		}
	case <-time.After(2 * time.Minute):
		t.Error("the second fetch did not say it waits for the lock")
	}
	close(release)
	var firstLog []string
	for first.stderr.Scan() {
		firstLog = append(firstLog, first.stderr.Text())
	}
	<-secondDone
	if err := first.cmd.Wait(); err != nil || strings.TrimSpace(first.out.String()) != "fetched=1 cached=0" {
		t.Errorf("first fetch: %v, %q\n%s", err, first.out.String(), strings.Join(firstLog, "\n"))
	}
	if err := second.cmd.Wait(); err != nil || strings.TrimSpace(second.out.String()) != "fetched=0 cached=1" {
		t.Errorf("second fetch: %v, %q\n%s", err, second.out.String(), strings.Join(secondLog, "\n"))
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("the server got %d requests, want 1", n)
	}
	c, err := OpenCache(root)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := c.Path("a.bin")
	if !ok {
		t.Fatal("a.bin is not in the cache")
	}
	if got, _ := fileSHA256(p); got != testsrv.SumHex(body) {
		t.Errorf("blob hashes to %s", got)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("blob mode: %v %v, want 0444", fi.Mode(), err)
	}
	if left := dirEntries(t, root+"/partial"); len(left) != 0 {
		t.Errorf("partial files left: %v", left)
	}
}
