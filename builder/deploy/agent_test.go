package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// testImage is a raw MBR disk of 24 MiB with one Linux partition from
// sector 2048 holding random bytes and a zero stretch, and its raw.zst.
func testImage(t *testing.T) (raw, zst []byte) {
	t.Helper()
	raw = make([]byte, 24<<20)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(raw[1<<20 : 12<<20])
	rng.Read(raw[20<<20:])
	raw[446+4] = 0x83
	binary.LittleEndian.PutUint32(raw[446+8:], 2048)
	binary.LittleEndian.PutUint32(raw[446+12:], uint32(len(raw)/512-2048))
	raw[510], raw[511] = 0x55, 0xaa
	raw[0] = 0xeb // "boot code"
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	return raw, buf.Bytes()
}

// fakeNode is a node's disks as the agent sees them: /sys/block entries
// and file-backed devices.
type fakeNode struct {
	sys, dev string
}

func newFakeNode(t testing.TB, disks map[string]int64) fakeNode {
	t.Helper()
	root := t.TempDir()
	n := fakeNode{sys: filepath.Join(root, "sys", "block"), dev: filepath.Join(root, "dev")}
	os.MkdirAll(n.dev, 0o755)
	i := 4
	for name, size := range disks {
		// Like sysfs: /sys/block/NAME links into the device tree.
		real := filepath.Join(root, "sys", "devices", "pci0000:00", fmt.Sprintf("0000:00:%02x.0", i), "virtio1", "block", name)
		i++
		os.MkdirAll(real, 0o755)
		os.WriteFile(filepath.Join(real, "size"), []byte(fmt.Sprint(size/512)), 0o644)
		os.WriteFile(filepath.Join(real, "removable"), []byte("0\n"), 0o644)
		os.WriteFile(filepath.Join(real, "serial"), []byte("SER-"+name+"\n"), 0o644)
		os.MkdirAll(n.sys, 0o755)
		if err := os.Symlink(real, filepath.Join(n.sys, name)); err != nil {
			t.Fatal(err)
		}
		oldDisk(t, filepath.Join(n.dev, name), size)
	}
	return n
}

// oldDisk makes path a sparse disk of size bytes holding an old system: a
// valid partition table and boot code.
func oldDisk(t testing.TB, path string, size int64) {
	t.Helper()
	old := make([]byte, 1<<20)
	old[0], old[510], old[511] = 0xeb, 0x55, 0xaa
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// imageServer serves the image the way bainoded does (http.ServeContent)
// and records status posts. cut, when set, breaks the first responses
// after that many bytes.
type imageServer struct {
	t       *testing.T
	zst     []byte
	cut     int64
	cuts    atomic.Int32
	maxCuts int32
	mu      sync.Mutex
	stages  []Status
	ranges  []string
}

func (s *imageServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/images/img.raw.zst":
		s.mu.Lock()
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		s.mu.Unlock()
		if s.cut > 0 && s.cuts.Load() < s.maxCuts {
			s.cuts.Add(1)
			// Send part of the answer, then drop the connection.
			start := int64(0)
			if rg := r.Header.Get("Range"); rg != "" {
				fmt.Sscanf(rg, "bytes=%d-", &start)
				w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(s.zst)-1, len(s.zst)))
				w.WriteHeader(http.StatusPartialContent)
			}
			w.Write(s.zst[start:min(start+s.cut, int64(len(s.zst)))])
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(s.zst))
	case strings.HasPrefix(r.URL.Path, "/nocloud/n1/"):
		switch r.URL.Path[len("/nocloud/n1/"):] {
		case "meta-data":
			io.WriteString(w, "instance-id: n1\nlocal-hostname: n1\n")
		case "user-data":
			io.WriteString(w, "#cloud-config\n{}\n")
		default: // empty documents
		}
	case r.URL.Path == StatusPath("n1") && r.Method == http.MethodPost:
		if r.Header.Get("Authorization") != "Bearer node-token" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		var st Status
		json.NewDecoder(r.Body).Decode(&st)
		s.mu.Lock()
		s.stages = append(s.stages, st)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

func (s *imageServer) stageList() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, st := range s.stages {
		out = append(out, st.Stage)
	}
	return strings.Join(out, ",")
}

func serveOn(t *testing.T, ln net.Listener, h http.Handler) *http.Server {
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return srv
}

func agentConfig(base string, zst []byte) Config {
	sum := sha256.Sum256(zst)
	return Config{Node: "n1", Server: base, Token: "node-token",
		Image: Image{URL: base + "/images/img.raw.zst", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(zst))},
		Seed:  base + "/nocloud/n1/"}
}

func runAgent(t *testing.T, cfg Config, n fakeNode) (error, bool, string) {
	var log strings.Builder
	var mu sync.Mutex
	rebooted := false
	err := Run(context.Background(), cfg, System{SysBlock: n.sys, Dev: n.dev, Stall: 20 * time.Second,
		Logf: func(f string, a ...any) {
			mu.Lock()
			fmt.Fprintf(&log, f+"\n", a...)
			mu.Unlock()
		},
		Reboot: func() error { rebooted = true; return nil }})
	if cfg.Token != "" && strings.Contains(log.String(), cfg.Token) {
		t.Errorf("the agent logged the node token:\n%s", log.String())
	}
	return err, rebooted, log.String()
}

// checkBlank asserts the disk holds no partition table or boot code.
func checkBlank(t *testing.T, path string) {
	t.Helper()
	f, _ := os.Open(path)
	defer f.Close()
	head := make([]byte, 1<<20)
	f.ReadAt(head, 0)
	if !isZero(head) {
		t.Errorf("%s: the first MiB is not zero after a failed deploy: a firmware could boot a half-written disk", path)
	}
}

func TestAgentDeploys(t *testing.T) {
	raw, zst := testImage(t)
	is := &imageServer{t: t, zst: zst}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	serveOn(t, ln, is)
	n := newFakeNode(t, map[string]int64{"vda": 64 << 20})
	err, rebooted, log := runAgent(t, agentConfig("http://"+ln.Addr().String(), zst), n)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, log)
	}
	if !rebooted {
		t.Error("no reboot after deploy")
	}
	if got := is.stageList(); got != "deploying,deployed" {
		t.Errorf("stages %q, want deploying,deployed", got)
	}
	disk, _ := os.ReadFile(filepath.Join(n.dev, "vda"))
	if !bytes.Equal(disk[512:len(raw)], raw[512:]) {
		t.Error("the disk does not hold the image past its MBR")
	}
	if !bytes.Equal(disk[:446], raw[:446]) {
		t.Error("boot code changed")
	}
	checkSfdisk(t, filepath.Join(n.dev, "vda"), "mbr")
	t.Logf("agent log:\n%s", log)
}

// checkSfdisk reads the written table back with sfdisk: partition 1 fills
// the disk up to the seed partition, which holds an ISO labelled cidata.
func checkSfdisk(t *testing.T, disk, scheme string) {
	t.Helper()
	if _, err := exec.LookPath("sfdisk"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sfdisk (fdisk) is not installed")
		}
		t.Skip("sfdisk not installed")
	}
	out, err := exec.Command("sfdisk", "--json", disk).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	var tab struct {
		PartitionTable struct {
			Label      string
			Partitions []struct {
				Start, Size int64
			}
		}
	}
	if err := json.Unmarshal(out, &tab); err != nil {
		t.Fatal(err)
	}
	pt := tab.PartitionTable
	want := map[string]string{"mbr": "dos", "gpt": "gpt"}[scheme]
	if pt.Label != want || len(pt.Partitions) != 2 {
		t.Fatalf("sfdisk: %s", out)
	}
	st, _ := os.Stat(disk)
	p1, p2 := pt.Partitions[0], pt.Partitions[1]
	if p1.Start+p1.Size != p2.Start || p2.Size != seedSize/512 || (p2.Start+p2.Size)*512 > st.Size() || st.Size()-(p2.Start+p2.Size)*512 > 2<<20 {
		t.Errorf("partition 1 does not reach the seed partition at the disk's end: %s", out)
	}
	f, _ := os.Open(disk)
	defer f.Close()
	label := make([]byte, 32)
	f.ReadAt(label, p2.Start*512+0x8000+40) // ISO 9660 volume identifier
	if !strings.EqualFold(strings.TrimRight(string(label), " \x00"), "cidata") {
		t.Errorf("seed partition volume id %q, want cidata", label)
	}
	if scheme == "gpt" {
		if out, err := exec.Command("sfdisk", "--verify", disk).CombinedOutput(); err != nil || !strings.Contains(string(out), "No errors detected") {
			t.Errorf("sfdisk --verify: %v\n%s", err, out)
		}
	}
}

func TestAgentChecksumMismatch(t *testing.T) {
	_, zst := testImage(t)
	bad := bytes.Clone(zst)
	bad[len(bad)/2] ^= 0xff // the manifest's hash is of zst
	is := &imageServer{t: t, zst: bad}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	serveOn(t, ln, is)
	n := newFakeNode(t, map[string]int64{"vda": 64 << 20})
	err, rebooted, log := runAgent(t, agentConfig("http://"+ln.Addr().String(), zst), n)
	if err == nil || rebooted {
		t.Fatalf("a corrupted image deployed (err %v, rebooted %v)\n%s", err, rebooted, log)
	}
	// A flipped byte may break the zstd frame before the hash is checked;
	// either way the deploy must fail and say so.
	if !strings.Contains(err.Error(), "checksum") && !strings.Contains(err.Error(), "decompressing") {
		t.Errorf("error %q names neither the checksum nor the decoder", err)
	}
	checkBlank(t, filepath.Join(n.dev, "vda"))
	if got := is.stageList(); got != "deploying,failed" {
		t.Errorf("stages %q, want deploying,failed", got)
	}
}

func TestAgentChecksumMismatchValidStream(t *testing.T) {
	// A well-formed stream of other content: only the hash catches it.
	_, zst := testImage(t)
	other := bytes.Clone(zst)
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	img := make([]byte, 24<<20)
	img[510], img[511] = 0x55, 0xaa
	zw.Write(img)
	zw.Close()
	other = buf.Bytes()
	cfg := func(base string) Config { c := agentConfig(base, zst); c.Image.Size = int64(len(other)); return c }
	is := &imageServer{t: t, zst: other}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	serveOn(t, ln, is)
	n := newFakeNode(t, map[string]int64{"vda": 64 << 20})
	err, _, _ := runAgent(t, cfg("http://"+ln.Addr().String()), n)
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("err %v, want a checksum mismatch", err)
	}
	checkBlank(t, filepath.Join(n.dev, "vda"))
}

func TestAgentResumes(t *testing.T) {
	raw, zst := testImage(t)
	is := &imageServer{t: t, zst: zst, cut: int64(len(zst)) / 5, maxCuts: 3}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	serveOn(t, ln, is)
	n := newFakeNode(t, map[string]int64{"vda": 64 << 20})
	err, rebooted, log := runAgent(t, agentConfig("http://"+ln.Addr().String(), zst), n)
	if err != nil || !rebooted {
		t.Fatalf("deploy over a cut connection: %v\n%s", err, log)
	}
	if !strings.Contains(log, "resumed at byte") {
		t.Errorf("no resume in the log:\n%s", log)
	}
	var ranged int
	for _, r := range is.ranges {
		if r != "" {
			ranged++
		}
	}
	if ranged != 3 {
		t.Errorf("%d Range requests (%q), want 3, one per cut", ranged, is.ranges)
	}
	disk, _ := os.ReadFile(filepath.Join(n.dev, "vda"))
	if !bytes.Equal(disk[512:len(raw)], raw[512:]) {
		t.Error("the disk does not hold the image after resumes")
	}
}

func TestAgentRefusesTwoDisks(t *testing.T) {
	_, zst := testImage(t)
	is := &imageServer{t: t, zst: zst}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	serveOn(t, ln, is)
	n := newFakeNode(t, map[string]int64{"vda": 64 << 20, "vdb": 64 << 20})
	err, rebooted, _ := runAgent(t, agentConfig("http://"+ln.Addr().String(), zst), n)
	if !errors.Is(err, ErrAmbiguous) || rebooted {
		t.Fatalf("err %v, rebooted %v; want a refusal", err, rebooted)
	}
	for _, d := range []string{"vda", "vdb"} {
		b, _ := os.ReadFile(filepath.Join(n.dev, d))
		if b[0] != 0xeb || b[510] != 0x55 {
			t.Errorf("%s was touched although the agent refused to pick a disk", d)
		}
	}
	if got := is.stageList(); got != "failed" {
		t.Errorf("stages %q, want failed", got)
	}
	// With a rule, the same node deploys to the named disk only.
	cfg := agentConfig("http://"+ln.Addr().String(), zst)
	cfg.Disk = DiskRule{Serial: "SER-vdb"}
	if err, _, log := runAgent(t, cfg, n); err != nil {
		t.Fatalf("with serial rule: %v\n%s", err, log)
	}
	a, _ := os.ReadFile(filepath.Join(n.dev, "vda"))
	if a[0] != 0xeb || !isZero(a[1:510]) {
		t.Error("vda changed though the rule names vdb")
	}
	cfg.Disk = DiskRule{ByPath: "pci-0000:00:09.0"}
	if err, _, _ := runAgent(t, cfg, n); !errors.Is(err, ErrNoDisk) {
		t.Errorf("by_path rule naming no disk: %v", err)
	}
}

// TestAgentServerRestart stops the server in the middle of the download
// and starts a new one on the same address a moment later, as a bainoded
// restart does; the agent resumes where it was.
func TestAgentServerRestart(t *testing.T) {
	raw, zst := testImage(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	is := &imageServer{t: t, zst: zst}
	// The first server dies after a fifth of the image.
	first := &imageServer{t: t, zst: zst, cut: int64(len(zst)) / 5, maxCuts: 1}
	var srv1 *http.Server
	srv1 = serveOn(t, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first.ServeHTTP(w, r)
		if r.URL.Path == "/images/img.raw.zst" {
			go func() {
				srv1.Close()
				time.Sleep(3 * time.Second) // down for a while: connections are refused
				ln2, err := net.Listen("tcp", addr)
				if err != nil {
					t.Errorf("restart: %v", err)
					return
				}
				serveOn(t, ln2, is)
			}()
		}
	}))
	n := newFakeNode(t, map[string]int64{"vda": 64 << 20})
	err, rebooted, log := runAgent(t, agentConfig("http://"+addr, zst), n)
	if err != nil || !rebooted {
		t.Fatalf("deploy across a server restart: %v\n%s", err, log)
	}
	if !strings.Contains(log, "resumed at byte") || !strings.Contains(log, "retrying") {
		t.Errorf("log shows no retry and resume:\n%s", log)
	}
	disk, _ := os.ReadFile(filepath.Join(n.dev, "vda"))
	if !bytes.Equal(disk[512:len(raw)], raw[512:]) {
		t.Error("the disk does not hold the image")
	}
	if got := first.stageList() + "|" + is.stageList(); got != "deploying|deployed" {
		t.Errorf("stages %q, want deploying on the first server and deployed on the second", got)
	}
}

func TestAgentImageTooLarge(t *testing.T) {
	_, zst := testImage(t)
	is := &imageServer{t: t, zst: zst}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	serveOn(t, ln, is)
	n := newFakeNode(t, map[string]int64{"vda": 28 << 20}) // 24 MiB image + 8 MiB seed do not fit
	err, _, _ := runAgent(t, agentConfig("http://"+ln.Addr().String(), zst), n)
	if err == nil || !strings.Contains(err.Error(), "larger than the disk") {
		t.Fatalf("err %v, want the image to be too large", err)
	}
	checkBlank(t, filepath.Join(n.dev, "vda"))
}

// TestAgentDeploysGPT deploys an image with a GPT made by sfdisk; the
// grown table, its backup at the disk's new end and the seed entry must
// pass sfdisk --verify.
func TestAgentDeploysGPT(t *testing.T) {
	if _, err := exec.LookPath("sfdisk"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sfdisk (fdisk) is not installed")
		}
		t.Skip("sfdisk not installed")
	}
	raw, _ := testImage(t)
	clear(raw[:1<<20])
	clear(raw[len(raw)-(1<<20):])
	img := filepath.Join(t.TempDir(), "gpt.raw")
	os.WriteFile(img, raw, 0o644)
	cmd := exec.Command("sfdisk", "--quiet", img)
	cmd.Stdin = strings.NewReader("label: gpt\nstart=2048, size=40000, type=L\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	raw, _ = os.ReadFile(img)
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	zst := buf.Bytes()
	is := &imageServer{t: t, zst: zst}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	serveOn(t, ln, is)
	n := newFakeNode(t, map[string]int64{"nvme0n1": 100 << 20})
	err, _, log := runAgent(t, agentConfig("http://"+ln.Addr().String(), zst), n)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, log)
	}
	checkSfdisk(t, filepath.Join(n.dev, "nvme0n1"), "gpt")
}
