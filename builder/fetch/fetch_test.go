package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/internal/testsrv"
)

// serveArtifacts puts n random files on a server and returns pinned artifacts for them.
func serveArtifacts(t *testing.T, n, size int) (*testsrv.Files, []Artifact) {
	t.Helper()
	files := map[string][]byte{}
	var arts []Artifact
	for i := 0; i < n; i++ {
		body := testsrv.RandomBytes(uint64(i+1), size+i*1000)
		p := fmt.Sprintf("/files/art-%d.bin", i)
		files[p] = body
		arts = append(arts, Artifact{Name: fmt.Sprintf("art-%d.bin", i), SHA256: testsrv.SumHex(body), Size: int64(len(body)), Kind: "file"})
	}
	srv := testsrv.NewFiles(t, files)
	for i := range arts {
		arts[i].URL = srv.URL + "/files/" + arts[i].Name
	}
	return srv, arts
}

func TestDownloadParallelWithProgressLog(t *testing.T) {
	srv, arts := serveArtifacts(t, 6, 256<<10)
	srv.Throttle = 3 * time.Millisecond
	c := openTestCache(t)
	var log syncBuffer
	o := testOptions()
	o.Progress, o.ProgressInterval = &log, 10*time.Millisecond
	res, err := Download(context.Background(), c, arts, o)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for i, a := range res.Artifacts {
		total += a.Size
		if a.SHA256 != arts[i].SHA256 {
			t.Errorf("%s: sha256 %s, want %s", a.Name, a.SHA256, arts[i].SHA256)
		}
		p, ok := c.Path(a.Name)
		if !ok {
			t.Fatalf("%s not in the cache index", a.Name)
		}
		if got, _ := fileSHA256(p); got != a.SHA256 {
			t.Errorf("%s: blob hashes to %s", a.Name, got)
		}
	}
	if res.Fetched != 6 || res.Cached != 0 || res.Downloaded != total {
		t.Errorf("result %+v, want 6 fetched, %d bytes", res, total)
	}
	if p := srv.Peak(); p < 2 || p > 4 {
		t.Errorf("peak concurrent transfers %d, want 2..4 with Jobs=4", p)
	}
	out := log.String()
	mustContain(t, out, "received,", "% of ", "downloaded art-0.bin", "[6/6]",
		"6 artifacts: 6 downloaded, 0 cached, 0 failed")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "fetch: ") || strings.ContainsAny(line, "\r\x1b") {
			t.Errorf("progress line is not a plain log line: %q", line)
		}
	}
	t.Logf("progress log:\n%s", out)
}

// TestDownloadWithBars drives the terminal (mpb) reporter through a cut,
// retried transfer and a failure; it must neither hang nor race.
func TestDownloadWithBars(t *testing.T) {
	srv, arts := serveArtifacts(t, 3, 200<<10)
	srv.CutOnce("/files/" + arts[1].Name)
	arts[2].SHA256 = testsrv.SumHex(nil)
	var out syncBuffer
	o := testOptions()
	o.Progress, o.bars = &out, true
	res, err := Download(context.Background(), openTestCache(t), arts, o)
	if err == nil || res.Fetched != 2 {
		t.Fatalf("%+v, %v; want 2 fetched and a checksum error", res, err)
	}
	mustContain(t, out.String(), "FAILED", arts[2].Name)
}

func TestDownloadResumesWithRange(t *testing.T) {
	srv, arts := serveArtifacts(t, 1, 1<<20)
	a := arts[0]
	path := "/files/" + a.Name
	srv.CutOnce(path)
	c := openTestCache(t)

	// First run: no retries, so the cut transfer fails and its partial stays.
	o := testOptions()
	o.Retries = -1
	if _, err := Download(context.Background(), c, arts, o); err == nil {
		t.Fatal("a transfer cut mid-body succeeded")
	} else {
		mustContain(t, err.Error(), a.Name)
	}
	part := c.partialPath(a)
	fi, err := os.Stat(part)
	if err != nil || fi.Size() != a.Size/2 {
		t.Fatalf("partial after the cut: %v, %v; want %d bytes", fi, err, a.Size/2)
	}

	// Second run resumes with a Range request and downloads only the rest.
	res, err := Download(context.Background(), c, arts, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s bytes=%d-", path, a.Size/2)
	if !reflect.DeepEqual(srv.Ranges(), []string{want}) {
		t.Errorf("ranges seen %q, want [%q]", srv.Ranges(), want)
	}
	if res.Downloaded != a.Size-a.Size/2 {
		t.Errorf("downloaded %d bytes on resume, want %d", res.Downloaded, a.Size-a.Size/2)
	}
	if _, err := os.Stat(part); !os.IsNotExist(err) {
		t.Errorf("partial still there after success: %v", err)
	}
	if probs := c.Check(NewLock(res.Artifacts)); len(probs) != 0 {
		t.Errorf("check after resume: %v", probs)
	}
}

func TestDownloadRetriesCutTransferInOneRun(t *testing.T) {
	srv, arts := serveArtifacts(t, 1, 512<<10)
	srv.CutOnce("/files/" + arts[0].Name)
	var log syncBuffer
	o := testOptions()
	o.Progress = &log
	res, err := Download(context.Background(), openTestCache(t), arts, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(srv.Ranges()) != 1 || res.Downloaded != arts[0].Size {
		t.Errorf("ranges %q, downloaded %d; want one Range and %d bytes", srv.Ranges(), res.Downloaded, arts[0].Size)
	}
	mustContain(t, log.String(), "attempt 1 failed", "retrying in")
}

func TestChecksumMismatchLeavesNothing(t *testing.T) {
	srv, arts := serveArtifacts(t, 1, 64<<10)
	a := arts[0]
	a.SHA256 = testsrv.SumHex([]byte("the bytes we were promised")) // the server has others
	c := openTestCache(t)
	_, err := Download(context.Background(), c, []Artifact{a}, testOptions())
	var ce *ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v, want a ChecksumError", err)
	}
	mustContain(t, err.Error(), a.Name, "expected "+a.SHA256, "got "+arts[0].SHA256)
	if left := dirEntries(t, c.Root()); len(left) != 1 || left[0] != ".lock" {
		t.Errorf("cache holds %v after a checksum failure", left)
	}
	if gets := srv.Gets("/files/" + a.Name); gets != 1 {
		t.Errorf("%d GETs; a fresh download that fails its checksum is not retried", gets)
	}
}

func TestDuplicateArtifactsFetchedOnce(t *testing.T) {
	srv, arts := serveArtifacts(t, 1, 300<<10)
	twin := arts[0]
	twin.Name = "same-bytes-other-name.bin"
	res, err := Download(context.Background(), openTestCache(t), []Artifact{arts[0], twin, arts[0]}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if gets := srv.Gets("/files/" + arts[0].Name); gets != 1 || res.Fetched != 1 || res.Cached != 2 {
		t.Errorf("%d GETs, %+v; want one download and two cache hits", gets, res)
	}
}

func TestHTTPErrors(t *testing.T) {
	srv, arts := serveArtifacts(t, 1, 1000)
	missing := Artifact{Name: "gone.deb", URL: srv.URL + "/files/gone.deb"}
	_, err := Download(context.Background(), openTestCache(t), []Artifact{arts[0], missing}, testOptions())
	if err == nil {
		t.Fatal("404 did not fail")
	}
	mustContain(t, err.Error(), "gone.deb", srv.URL+"/files/gone.deb", "404")
	if gets := srv.Gets("/files/gone.deb"); gets != 1 {
		t.Errorf("404 fetched %d times; it is final", gets)
	}
}

func TestMirrorRewriting(t *testing.T) {
	origin := testsrv.NewFiles(t, map[string][]byte{})
	body := testsrv.RandomBytes(7, 100<<10)
	mirror := testsrv.NewFiles(t, map[string][]byte{"/mirror/pool/a.deb": body})
	a := Artifact{Name: "a.deb", URL: origin.URL + "/pool/a.deb", SHA256: testsrv.SumHex(body)}
	o := testOptions()
	o.Mirrors = map[string]string{origin.URL: mirror.URL + "/mirror/", "http://unrelated.invalid": "http://x.invalid"}
	res, err := Download(context.Background(), openTestCache(t), []Artifact{a}, o)
	if err != nil {
		t.Fatal(err)
	}
	if gets := mirror.Gets("/mirror/pool/a.deb"); gets != 1 {
		t.Errorf("mirror saw %d GETs of the artifact, want 1", gets)
	}
	if n := origin.TotalGets(); n != 0 {
		t.Errorf("origin saw %d requests", n)
	}
	if res.Artifacts[0].URL != a.URL {
		t.Errorf("result URL %s; the lock must keep the origin URL %s", res.Artifacts[0].URL, a.URL)
	}
}

func TestRewriteURLAndParseMirror(t *testing.T) {
	m := map[string]string{
		"https://download.docker.com":              "http://mirror.lan/docker",
		"https://download.docker.com/linux/ubuntu": "http://mirror.lan/docker-ubuntu/",
	}
	for in, want := range map[string]string{
		"https://download.docker.com/linux/ubuntu/dists/focal/InRelease": "http://mirror.lan/docker-ubuntu/dists/focal/InRelease",
		"https://download.docker.com/linux/static/x.tgz":                 "http://mirror.lan/docker/linux/static/x.tgz",
		"https://download.docker.com.evil.example/x":                     "https://download.docker.com.evil.example/x",
		"https://github.com/a/b":                                         "https://github.com/a/b",
	} {
		if got := RewriteURL(in, m); got != want {
			t.Errorf("RewriteURL(%s) = %s, want %s", in, got, want)
		}
	}
	if o, r, err := ParseMirror("https://a.example=http://10.0.0.1:8080/a"); err != nil || o != "https://a.example" || r != "http://10.0.0.1:8080/a" {
		t.Errorf("ParseMirror: %q %q %v", o, r, err)
	}
	for _, bad := range []string{"https://a.example", "=http://x", "a=b"} {
		if _, _, err := ParseMirror(bad); err == nil {
			t.Errorf("ParseMirror(%q) accepted", bad)
		}
	}
}

func TestWarmCacheDownloadsNothing(t *testing.T) {
	srv, arts := serveArtifacts(t, 4, 128<<10)
	// One artifact is unpinned, as from a --list without a sum: the lock pins it.
	arts[3].SHA256, arts[3].Size = "", 0
	c := openTestCache(t)
	res, err := Download(context.Background(), c, arts, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	lockFile := filepath.Join(t.TempDir(), LockFileName)
	if err := NewLock(res.Artifacts).WriteFile(lockFile); err != nil {
		t.Fatal(err)
	}
	lock, err := ReadLock(lockFile)
	if err != nil {
		t.Fatal(err)
	}
	requests, hashes := srv.TotalGets(), blobHashes.Load()

	res2, err := Download(context.Background(), c, lock.Pin(arts), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if res2.Downloaded != 0 || res2.Cached != 4 || res2.Fetched != 0 {
		t.Errorf("warm run: %+v, want 0 bytes, 4 cached", res2)
	}
	if n := srv.TotalGets(); n != requests {
		t.Errorf("warm run made %d requests", n-requests)
	}
	if h := blobHashes.Load(); h != hashes {
		t.Errorf("warm run re-hashed %d blobs", h-hashes)
	}
	if !reflect.DeepEqual(res2.Artifacts, lock.Artifacts) {
		t.Errorf("warm result %+v differs from the lock %+v", res2.Artifacts, lock.Artifacts)
	}

	// A touched blob (new mtime) is re-hashed once, found good, and kept.
	p := c.BlobPath(arts[0].SHA256)
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	res3, err := Download(context.Background(), c, lock.Artifacts, testOptions())
	if err != nil || res3.Downloaded != 0 {
		t.Fatalf("after touch: %+v, %v", res3, err)
	}
	if h := blobHashes.Load(); h != hashes+1 {
		t.Errorf("touched blob: %d hashes, want 1", h-hashes)
	}
}

func TestCheckReportsMissingAndCorrupt(t *testing.T) {
	_, arts := serveArtifacts(t, 4, 64<<10)
	c := openTestCache(t)
	res, err := Download(context.Background(), c, arts, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	lock := NewLock(append(res.Artifacts, Artifact{Name: "later.img", URL: "http://127.0.0.1:1/later.img"}))
	if probs := c.Check(lock); len(probs) != 1 || probs[0].Kind != Unpinned {
		t.Fatalf("fresh cache: %v, want only the unpinned one", probs)
	}

	// art-0 deleted, art-1 truncated, art-2 with one byte flipped and its mtime kept.
	os.Remove(c.BlobPath(arts[0].SHA256))
	p1 := c.BlobPath(arts[1].SHA256)
	os.Chmod(p1, 0o644)
	if err := os.Truncate(p1, 1000); err != nil {
		t.Fatal(err)
	}
	p2 := c.BlobPath(arts[2].SHA256)
	fi, _ := os.Stat(p2)
	os.Chmod(p2, 0o644)
	b, _ := os.ReadFile(p2)
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(p2, b, 0o444); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p2, fi.ModTime(), fi.ModTime())

	probs := c.Check(lock)
	got := map[string]ProblemKind{}
	for _, p := range probs {
		got[p.Artifact.Name] = p.Kind
	}
	want := map[string]ProblemKind{"art-0.bin": Missing, "art-1.bin": Corrupt, "art-2.bin": Corrupt, "later.img": Unpinned}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Check = %v, want %v", probs, want)
	}
	for _, p := range probs {
		t.Logf("problem: %s", p)
	}

	// A fetch after the check repairs all three, the flipped one included.
	res2, err := Download(context.Background(), c, res.Artifacts, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if res2.Fetched != 3 || res2.Cached != 1 {
		t.Errorf("repair run: %+v, want 3 fetched and 1 cached", res2)
	}
	if probs := c.Check(NewLock(res.Artifacts)); len(probs) != 0 {
		t.Errorf("after repair: %v", probs)
	}
}

func TestLockIsStable(t *testing.T) {
	arts := []Artifact{
		{Name: "b.deb", URL: "https://example.invalid/b.deb", Size: 2, SHA256: strings.Repeat("b", 64), Version: "1:2.0-1", Kind: "deb"},
		{Name: "a.img", URL: "https://example.invalid/a.img", Size: 1, SHA256: strings.Repeat("a", 64)},
	}
	one, err := NewLock(arts).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	two, _ := NewLock([]Artifact{arts[1], arts[0]}).Marshal()
	if !bytes.Equal(one, two) {
		t.Errorf("lock bytes depend on input order:\n%s\n%s", one, two)
	}
	l, err := ParseLock(one)
	if err != nil {
		t.Fatal(err)
	}
	if l.Artifacts[0].Name != "a.img" || !reflect.DeepEqual(l.Artifacts[1], arts[0]) {
		t.Errorf("round trip: %+v", l.Artifacts)
	}
	if _, err := NewLock(append(arts, Artifact{Name: "a.img", URL: "https://other.invalid/a.img"})).Marshal(); err == nil {
		t.Error("two artifacts with one name were accepted")
	}
	if _, err := ParseLock([]byte(`{"format": 1, "artifacts": [{"name": "x", "url": "u", "sha256": "zz"}]}`)); err == nil {
		t.Error("a bad sha256 was accepted")
	}
}

func TestImport(t *testing.T) {
	c := openTestCache(t)
	f := filepath.Join(t.TempDir(), "carried.iso")
	body := testsrv.RandomBytes(3, 5000)
	os.WriteFile(f, body, 0o644)
	if _, err := c.Import(f, Artifact{SHA256: testsrv.SumHex([]byte("other"))}); err == nil {
		t.Error("import with a wrong sum succeeded")
	}
	a, err := c.Import(f, Artifact{URL: "https://example.invalid/carried.iso"})
	if err != nil || a.SHA256 != testsrv.SumHex(body) || a.Size != 5000 || a.Name != "carried.iso" {
		t.Fatalf("import: %+v, %v", a, err)
	}
	if p, ok := c.Path("carried.iso"); !ok || p != c.BlobPath(a.SHA256) {
		t.Errorf("Path after import: %s %v", p, ok)
	}
}
