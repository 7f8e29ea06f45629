//go:build linux

package main

import (
	"bytes"
	"context"
	le "encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runCmd runs a command to its end and returns its combined output.
func runCmd(tb testing.TB, timeout time.Duration, name string, args ...string) (string, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	if ctx.Err() != nil {
		tb.Fatalf("%s %v did not finish in %v:\n%s", filepath.Base(name), args, timeout, out.String())
	}
	return out.String(), err
}

var (
	cliOnce   sync.Once
	cliBinary string
	cliErr    error
)

// bainodeCLI builds the pure-Go bainode CLI next to bainoded.
func bainodeCLI(tb testing.TB) string {
	cliOnce.Do(func() {
		cliBinary = filepath.Join(filepath.Dir(binary), "bainode")
		cmd := exec.Command("go", "build", "-o", cliBinary, "../bainode")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("building bainode: %v\n%s", err, out)
		}
	})
	if cliErr != nil {
		tb.Fatal(cliErr)
	}
	return cliBinary
}

// makeCert issues a member certificate for 127.0.0.1 from the CA in caDir
// (created on first use) and returns the member's TLS flags.
func makeCert(tb testing.TB, caDir, name string) []string {
	tb.Helper()
	out, err := runCmd(tb, time.Minute, binary, "cluster-cert", "--ca-dir", caDir, "--name", name, "--ip", "127.0.0.1")
	if err != nil {
		tb.Fatalf("cluster-cert %s: %v\n%s", name, err, out)
	}
	for _, f := range []string{"ca.key", name + ".key"} {
		if fi, err := os.Stat(filepath.Join(caDir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			tb.Fatalf("%s: mode %v %v, want 0600", f, fi.Mode().Perm(), err)
		}
	}
	return []string{"--cluster-cert", filepath.Join(caDir, name+".crt"),
		"--cluster-key", filepath.Join(caDir, name+".key"), "--cluster-ca", filepath.Join(caDir, "ca.crt")}
}

// dqliteAnswer speaks dqlite's wire protocol in plaintext to addr: the
// protocol version, then a request for the leader. It returns whether a
// well-formed node answer came back.
func dqliteAnswer(addr string) (bool, []byte, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false, nil, err
	}
	defer conn.Close()
	req := make([]byte, 8+8+8)
	le.LittleEndian.PutUint64(req[0:], 1) // protocol version 1
	le.LittleEndian.PutUint32(req[8:], 1) // body: one 8-byte word
	req[12] = 0                           // request type: leader
	if _, err := conn.Write(req); err != nil {
		return false, nil, err
	}
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	var got []byte
	buf := make([]byte, 512)
	for {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if len(got) >= 8 {
			words := int(le.LittleEndian.Uint32(got))
			if got[4] == 1 && words > 0 && len(got) >= 8+8*words { // response type: node
				return true, got, nil
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
				err = nil
			}
			return false, got, err
		}
	}
}

// expectOutsider starts a bainoded that tries to join c with flags extra
// and checks that it gives up and never shows up among the members.
func expectOutsider(t *testing.T, c *cluster, name string, extra ...string) {
	t.Helper()
	dir := filepath.Join(c.dir, name)
	args := append([]string{"--data", dir, "--listen", freeAddr(t), "--cluster-address", freeAddr(t),
		"--join", c.members[0].raft, "--join-timeout", "15s", "--log-level", "warn",
		"--admin-token-file", filepath.Join(c.dir, "admin.token")}, extra...)
	out, err := runCmd(t, 2*time.Minute, binary, args...)
	if err == nil || !strings.Contains(out, "not ready") {
		t.Errorf("%s: want a start that fails with 'not ready', got %v:\n%s", name, err, out)
	}
	ms, err := c.membersVia(c.live()[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != len(c.live()) {
		t.Errorf("after %s tried to join: members %+v", name, ms)
	}
}

// TestClusterTLS runs three members with mutual TLS: they replicate and
// fail over, a plaintext dqlite client gets no answer from them, and
// members with no certificate or one from another CA cannot join.
func TestClusterTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	caDir, rogueDir := t.TempDir(), t.TempDir()
	flags := map[string][]string{}
	for _, n := range []string{"m1", "m2", "m3"} {
		flags[n] = makeCert(t, caDir, n)
	}
	c := newClusterEach(t, 3, func(m *member) []string { return flags[m.name] })

	token := c.setup(c.members[0])
	if err := c.phoneHome(ctx, c.members[0], token, "tls-1"); err != nil {
		t.Fatal(err)
	}
	if ids, err := c.storedIDs(c.members[2]); err != nil || !ids["tls-1"] {
		t.Fatalf("write via m1 not read via m3: %v %v", ids, err)
	}

	for _, m := range c.members {
		ok, got, err := dqliteAnswer(m.raft)
		if ok {
			t.Errorf("%s answered plaintext dqlite: %x", m.name, got)
		}
		t.Logf("%s to plaintext dqlite: %d bytes %x, %v", m.name, len(got), got, err)
	}

	expectOutsider(t, c, "plain")
	expectOutsider(t, c, "rogue", makeCert(t, rogueDir, "m4")...)

	victim := c.leader(30 * time.Second)
	killedAt := time.Now()
	c.kill(victim)
	if _, err := c.probeWrite(ctx, token, killedAt); err != nil {
		t.Fatalf("after killing leader %s: %v", victim.name, err)
	}
	if ids, err := c.storedIDs(c.live()[0]); err != nil || !ids["tls-1"] {
		t.Fatalf("after failover: %v %v", ids, err)
	}
}

// TestClusterTLSFlags checks the TLS flags are refused before anything
// starts when incomplete or inconsistent.
func TestClusterTLSFlags(t *testing.T) {
	ca, other := t.TempDir(), t.TempDir()
	good := makeCert(t, ca, "m1")
	rogue := makeCert(t, other, "m1")
	data := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cluster-cert", good[1]}, "--cluster-cert, --cluster-key and --cluster-ca go together"},
		{[]string{"--cluster-cert", good[1], "--cluster-key", good[3]}, "go together"},
		{good, "need --cluster-address"},
		{append([]string{"--cluster-address", "127.0.0.1:1"}, good[0], good[1], good[2], good[3], good[4], rogue[5]),
			"is not valid under --cluster-ca"},
		{append([]string{"--cluster-address", "127.0.0.2:1"}, good...), "does not name 127.0.0.2"},
		{append([]string{"--cluster-address", "127.0.0.1:1"}, good[0], good[1], good[2], rogue[3], good[4], good[5]),
			"--cluster-key"},
	} {
		args := append([]string{"--data", data, "--listen", "127.0.0.1:0"}, tc.args...)
		out, err := runCmd(t, time.Minute, binary, args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%v: want an error with %q, got %v: %s", tc.args, tc.want, err, out)
		}
	}
	if entries, _ := os.ReadDir(data); len(entries) != 0 {
		t.Errorf("refused starts left files in --data: %v", entries)
	}
}

// cli runs the bainode CLI against member m.
func (c *cluster) cli(m *member, args ...string) (string, error) {
	args = append(args, "--server", "http://"+m.admin, "--token-file", filepath.Join(c.dir, "admin.token"))
	return runCmd(c.tb, 2*time.Minute, bainodeCLI(c.tb), args...)
}

// stop sends SIGTERM, as systemd would, and waits for the exit.
func (c *cluster) stop(m *member) {
	m.mu.Lock()
	m.dead = true
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(time.Minute):
		c.tb.Errorf("%s ignored SIGTERM for a minute", m.name)
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
}

// TestClusterRemoveMember stops a member of three and removes it with
// "bainode cluster remove"; the other two keep accepting writes.
func TestClusterRemoveMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := newCluster(t, 3)
	token := c.setup(c.members[0])

	// The probe of TestClusterTLS gets an answer from a plaintext member.
	if ok, got, err := dqliteAnswer(c.members[0].raft); !ok {
		t.Fatalf("plaintext member gave no dqlite answer: %x %v", got, err)
	}

	leader := c.leader(30 * time.Second)
	var victim *member
	for _, m := range c.members[1:] {
		if m != leader {
			victim = m
			break
		}
	}
	c.stop(victim)
	via := c.live()[0]

	if out, err := c.cli(via, "cluster", "remove", "127.0.0.1:1"); err == nil || !strings.Contains(out, "404") {
		t.Errorf("removing an unknown member: %v\n%s", err, out)
	}
	if out, err := c.cli(via, "cluster", "remove", via.raft); err == nil || !strings.Contains(out, "409") {
		t.Errorf("removing the member asked: %v\n%s", err, out)
	}
	out, err := c.cli(via, "cluster", "remove", victim.raft)
	if err != nil || !strings.Contains(out, "removed") {
		t.Fatalf("cluster remove %s: %v\n%s", victim.raft, err, out)
	}
	t.Logf("bainode cluster remove: %s", out)

	out, err = c.cli(via, "cluster", "list", "--json")
	if err != nil {
		t.Fatalf("cluster list: %v\n%s", err, out)
	}
	var ms []memberInfo
	if err := json.Unmarshal([]byte(out), &ms); err != nil {
		t.Fatalf("cluster list --json: %v\n%s", err, out)
	}
	if len(ms) != 2 {
		t.Errorf("members after removal: %+v", ms)
	}
	for _, m := range ms {
		if m.Address == victim.raft {
			t.Errorf("%s still a member: %+v", victim.name, ms)
		}
	}
	if out, err := c.cli(via, "cluster", "list"); err != nil || !strings.Contains(out, "ADDRESS") {
		t.Errorf("cluster list: %v\n%s", err, out)
	}

	for i, m := range c.live() {
		if err := c.phoneHome(ctx, m, token, fmt.Sprintf("after-remove-%d", i)); err != nil {
			t.Errorf("write via %s after the removal: %v", m.name, err)
		}
	}
	ids, err := c.storedIDs(c.live()[0])
	if err != nil || !ids["after-remove-0"] || !ids["after-remove-1"] {
		t.Errorf("writes after the removal: %v %v", ids, err)
	}
}

// TestClusterRecover loses two members of three for good, recovers the
// survivor into a one-member cluster with "bainoded recover" and checks
// that its data is there, that it takes writes and new members.
func TestClusterRecover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	c := newCluster(t, 3)
	token := c.setup(c.members[0])
	for i := 0; i < 5; i++ {
		if err := c.phoneHome(ctx, c.members[i%3], token, fmt.Sprintf("before-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// The leader has every acknowledged write; make it m1, the survivor.
	survivor := c.members[0]
	if c.leader(30*time.Second) != survivor {
		transferTo(ctx, t, c, survivor)
	}
	if l := c.leader(30 * time.Second); l != survivor {
		t.Fatalf("leader is %s, want %s", l.name, survivor.name)
	}
	c.kill(c.members[1])
	c.kill(c.members[2])

	out, err := runCmd(t, time.Minute, binary, "recover", "--data", survivor.dir)
	if err == nil || !strings.Contains(out, "in use by a running bainoded") {
		t.Errorf("recover on a running member: want a refusal, got %v\n%s", err, out)
	}
	c.stop(survivor)
	out, err = runCmd(t, time.Minute, binary, "recover", "--data", survivor.dir)
	if err != nil || !strings.Contains(out, survivor.raft) {
		t.Fatalf("recover: %v\n%s", err, out)
	}
	t.Logf("bainoded recover: %s", out)

	c.start(survivor)
	c.waitHealthy(survivor, 2*time.Minute)
	ms, err := c.membersVia(survivor)
	if err != nil || len(ms) != 1 || ms[0].Address != survivor.raft || ms[0].Role != "voter" || !ms[0].Leader {
		t.Fatalf("members after recovery: %+v %v", ms, err)
	}
	ids, err := c.storedIDs(survivor)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if !ids[fmt.Sprintf("before-%d", i)] {
			t.Errorf("before-%d lost in the recovery: %v", i, ids)
		}
	}
	if err := c.phoneHome(ctx, survivor, token, "after-recover"); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}

	// New members join as usual; the survivor, still the only voter,
	// cannot be removed through them.
	m4 := &member{name: "m4", dir: filepath.Join(c.dir, "m4"), http: freeAddr(t), raft: freeAddr(t), admin: freeAddr(t)}
	c.members = append(c.members, m4)
	c.start(m4)
	c.waitHealthy(m4, 2*time.Minute)
	if ids, err := c.storedIDs(m4); err != nil || !ids["after-recover"] || !ids["before-0"] {
		t.Errorf("via the new member: %v %v", ids, err)
	}
	code, body, err := c.do(m4, "DELETE", "/api/v1/cluster/members/"+survivor.raft, c.token, "", "")
	if err != nil || code != 409 || !strings.Contains(body, "last voter") {
		t.Errorf("removing the last voter: %d %s %v", code, body, err)
	}
	if ms, err := c.membersVia(m4); err != nil || len(ms) != 2 {
		t.Errorf("members after joining: %+v %v", ms, err)
	}
}
