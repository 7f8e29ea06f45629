//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the bainoded built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bainoded-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "bainoded")
	// A missing libdqlite fails here, in CI or not: nothing is skipped.
	build := exec.Command("go", "build", "-tags", "libsqlite3", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building bainoded:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// member is one bainoded process of a test cluster.
type member struct {
	name, dir, http, raft string
	admin                 string // --admin-listen
	mu                    sync.Mutex
	cmd                   *exec.Cmd
	exited                chan struct{}
	dead                  bool // killed on purpose; failures against it are expected
}

type cluster struct {
	tb   testing.TB
	args []string // extra flags for every member
	// perMember, if set, gives flags of one member (its certificate).
	perMember func(*member) []string
	dir       string
	token     string
	members   []*member
	client    *http.Client
}

// freeAddr reserves a loopback port by binding and releasing it.
func freeAddr(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// newCluster starts n members on 127.0.0.1 with the extra flags args; all
// are stopped on cleanup, whatever happens in the test.
func newCluster(tb testing.TB, n int, args ...string) *cluster {
	return newClusterEach(tb, n, nil, args...)
}

// newClusterEach is newCluster with flags that differ between members.
func newClusterEach(tb testing.TB, n int, perMember func(*member) []string, args ...string) *cluster {
	c := &cluster{tb: tb, args: args, perMember: perMember, dir: tb.TempDir(), token: "test-admin-token-0123456789abcdef",
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 64, DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext}}}
	if err := os.WriteFile(filepath.Join(c.dir, "admin.token"), []byte(c.token+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.stopAll)
	for i := 0; i < n; i++ {
		m := &member{name: fmt.Sprintf("m%d", i+1), dir: filepath.Join(c.dir, fmt.Sprintf("m%d", i+1)),
			http: freeAddr(tb), raft: freeAddr(tb), admin: freeAddr(tb)}
		c.members = append(c.members, m)
		c.start(m)
		c.waitHealthy(m, time.Minute)
	}
	c.waitVoters(n, time.Minute)
	return c
}

func (c *cluster) start(m *member) {
	args := []string{"--data", m.dir, "--listen", m.http, "--admin-listen", m.admin, "--cluster-address", m.raft,
		"--admin-token-file", filepath.Join(c.dir, "admin.token"), "--log-level", "warn"}
	if m != c.members[0] {
		args = append(args, "--join", c.members[0].raft)
	}
	args = append(args, c.args...)
	if c.perMember != nil {
		args = append(args, c.perMember(m)...)
	}
	logf, err := os.OpenFile(filepath.Join(c.dir, m.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.tb.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Members die with the test binary even if cleanup never runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	m.mu.Lock()
	m.cmd, m.exited, m.dead = cmd, exited, false
	m.mu.Unlock()
}

// kill sends SIGKILL, as a power cut would.
func (c *cluster) kill(m *member) {
	m.mu.Lock()
	m.dead = true
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

func (m *member) isDead() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dead
}

// stopAll terminates every member still running, then dumps logs if the
// test failed.
func (c *cluster) stopAll() {
	var wg sync.WaitGroup
	for _, m := range c.members {
		m.mu.Lock()
		cmd, exited := m.cmd, m.exited
		m.mu.Unlock()
		if cmd == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				cmd.Process.Signal(syscall.SIGKILL)
				<-exited
			}
		}()
	}
	wg.Wait()
	if c.tb.Failed() {
		for _, m := range c.members {
			b, _ := os.ReadFile(filepath.Join(c.dir, m.name+".log"))
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			c.tb.Logf("%s log tail:\n%s", m.name, b)
		}
	}
}

func (c *cluster) waitHealthy(m *member, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-m.exited:
			c.tb.Fatalf("%s exited during startup", m.name)
		default:
		}
		if resp, err := c.client.Get("http://" + m.http + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.tb.Fatalf("%s not healthy after %v", m.name, timeout)
}

type memberInfo struct {
	ID      uint64
	Address string
	Role    string
	Leader  bool
}

// membersVia asks m for the cluster as the leader sees it.
func (c *cluster) membersVia(m *member) ([]memberInfo, error) {
	var out struct{ Members []memberInfo }
	code, body, err := c.do(m, "GET", "/api/v1/cluster", c.token, "", "")
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("cluster: %d %s", code, body)
	}
	err = json.Unmarshal([]byte(body), &out)
	return out.Members, err
}

func (c *cluster) waitVoters(n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ms, err := c.membersVia(c.live()[0]); err == nil {
			voters := 0
			for _, m := range ms {
				if m.Role == "voter" {
					voters++
				}
			}
			if voters >= n {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.tb.Fatalf("cluster did not reach %d voters in %v", n, timeout)
}

// leader returns the member currently leading, asking any live member.
func (c *cluster) leader(timeout time.Duration) *member {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, via := range c.live() {
			ms, err := c.membersVia(via)
			if err != nil {
				continue
			}
			for _, mi := range ms {
				for _, m := range c.members {
					if mi.Leader && mi.Address == m.raft && !m.isDead() {
						return m
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.tb.Fatalf("no leader after %v", timeout)
	return nil
}

func (c *cluster) live() []*member {
	var out []*member
	for _, m := range c.members {
		if !m.isDead() {
			out = append(out, m)
		}
	}
	return out
}

func (c *cluster) do(m *member, method, path, token, body, ctype string) (int, string, error) {
	return c.doCtx(context.Background(), m, method, path, token, body, ctype)
}

func (c *cluster) doCtx(ctx context.Context, m *member, method, path, token, body, ctype string) (int, string, error) {
	host := m.http
	if strings.HasPrefix(path, "/api/") {
		host = m.admin // the admin API has its own listener
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+host+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// setup stores a site and one node through m and returns the node token.
func (c *cluster) setup(m *member) string {
	if code, body, err := c.do(m, "PUT", "/api/v1/site", c.token, "version: 1\nnodes:\n  - hostname: gpu1\n", "application/yaml"); err != nil || code != 200 {
		c.tb.Fatalf("PUT site: %d %s %v", code, body, err)
	}
	code, body, err := c.do(m, "PUT", "/api/v1/nodes/gpu1", c.token, `{"macs": ["52:54:00:00:00:01"]}`, "application/json")
	if err != nil || code != 200 {
		c.tb.Fatalf("PUT node: %d %s %v", code, body, err)
	}
	var out struct{ Token string }
	json.Unmarshal([]byte(body), &out)
	return out.Token
}

// phoneHome posts one phone_home report with a unique instance id.
func (c *cluster) phoneHome(ctx context.Context, m *member, token, id string) error {
	form := url.Values{"instance_id": {id}, "hostname": {"gpu1"}}.Encode()
	code, body, err := c.doCtx(ctx, m, "POST", "/phone-home/gpu1/"+token, "", form, "application/x-www-form-urlencoded")
	if err != nil {
		return err
	}
	if code != http.StatusNoContent {
		return fmt.Errorf("phone-home: %d %s", code, body)
	}
	return nil
}

// storedIDs returns the instance ids stored as gpu1's events, read via m.
func (c *cluster) storedIDs(m *member) (map[string]bool, error) {
	code, body, err := c.do(m, "GET", "/api/v1/nodes/gpu1/events?limit=0", c.token, "", "")
	if err != nil || code != 200 {
		return nil, fmt.Errorf("events: %d %v", code, err)
	}
	var ev []struct{ Detail string }
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for _, e := range ev {
		for _, f := range strings.Fields(e.Detail) {
			if id, ok := strings.CutPrefix(f, "instance_id="); ok {
				ids[id] = true
			}
		}
	}
	return ids, nil
}
