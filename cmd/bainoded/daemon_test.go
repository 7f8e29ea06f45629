//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// solo is a bainoded process without peers.
type solo struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan error
}

// syncBuffer collects output that the test reads while the process runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startDaemon(t *testing.T, args ...string) *solo {
	t.Helper()
	d := &solo{out: &syncBuffer{}, exited: make(chan error, 1)}
	d.cmd = exec.Command(binary, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.exited
		d.exited <- nil // let a later stop return
	})
	return d
}

// stop sends SIGTERM and returns the exit error.
func (d *solo) stop(t *testing.T) error {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		d.exited <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("bainoded ignored SIGTERM for 30s:\n%s", d.out)
		return nil
	}
}

func waitGet(t *testing.T, client *http.Client, url string) *http.Response {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(url); err == nil {
			return resp
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: no answer within a minute", url)
	return nil
}

func TestDaemonLone(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	addr, admin := freeAddr(t), freeAddr(t)
	d := startDaemon(t, "--data", data, "--listen", addr, "--admin-listen", admin)
	resp := waitGet(t, http.DefaultClient, "http://"+addr+"/healthz")
	resp.Body.Close()

	tokFile := filepath.Join(data, "admin.token")
	fi, err := os.Stat(tokFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v, mode %v; want 0600", err, fi.Mode())
	}
	if !strings.Contains(d.out.String(), "wrote a new admin token to "+tokFile) {
		t.Errorf("token file location not printed:\n%s", d.out)
	}
	tok, _ := os.ReadFile(tokFile)
	c := &cluster{tb: t, token: strings.TrimSpace(string(tok)), client: http.DefaultClient}
	m := &member{name: "lone", http: addr, admin: admin}
	c.setup(m)
	if err := d.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, d.out)
	}

	// Same directory, same token file: the inventory is still there.
	d = startDaemon(t, "--data", data, "--listen", addr, "--admin-listen", admin)
	resp = waitGet(t, http.DefaultClient, "http://"+addr+"/nocloud/52:54:00:00:00:01/meta-data")
	body := readBody(resp)
	if resp.StatusCode != 200 || !strings.Contains(body, "local-hostname: \"gpu1\"\n") {
		t.Errorf("seed after restart: %d %q", resp.StatusCode, body)
	}
	if strings.Contains(d.out.String(), "wrote a new admin token") {
		t.Errorf("restart replaced the admin token")
	}
}

func TestDaemonTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := selfSigned(t, dir)
	addr := freeAddr(t)
	startDaemon(t, "--data", filepath.Join(dir, "data"), "--listen", addr, "--admin-listen", freeAddr(t),
		"--tls-cert", cert, "--tls-key", key)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp := waitGet(t, client, "https://"+addr+"/healthz")
	if body := readBody(resp); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("https healthz: %d %q", resp.StatusCode, body)
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		if resp.StatusCode == 200 {
			t.Errorf("plain http on the TLS port answered 200")
		}
		resp.Body.Close()
	}
}

func TestDaemonBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--tls-cert", "x.pem"},
		{"--tls-cert", "missing.pem", "--tls-key", "missing.key"},
		{"--log-level", "loud"},
		{"--join", "127.0.0.1:1"}, // joining needs --cluster-address
	} {
		args = append(args, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err == nil || !strings.HasPrefix(string(out), "bainoded: ") {
			t.Errorf("bainoded %v: got %v %q, want a failure", args, err, out)
		}
	}
}

func readBody(resp *http.Response) string {
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return b.String()
}

// selfSigned writes a certificate for 127.0.0.1 and returns its files and
// a pool trusting it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bainoded test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	parsed, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(parsed)
	return certFile, keyFile, pool
}

// TestDaemonAdminListener: the admin API is only on --admin-listen (a TCP
// loopback port or a 0600 unix socket), never on the machines' port unless
// --single-port asks; an admin listener off loopback needs TLS.
func TestDaemonAdminListener(t *testing.T) {
	dir := t.TempDir()
	get := func(client *http.Client, url, token string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	token := func(data string) string {
		b, _ := os.ReadFile(filepath.Join(data, "admin.token"))
		return strings.TrimSpace(string(b))
	}

	// Split, TCP.
	data := filepath.Join(dir, "split")
	addr, admin := freeAddr(t), freeAddr(t)
	startDaemon(t, "--data", data, "--listen", addr, "--admin-listen", admin)
	waitGet(t, http.DefaultClient, "http://"+admin+"/healthz").Body.Close()
	if c := get(http.DefaultClient, "http://"+addr+"/api/v1/nodes", token(data)); c != 404 {
		t.Errorf("admin API on the machines' port: %d, want 404", c)
	}
	if c := get(http.DefaultClient, "http://"+admin+"/api/v1/nodes", token(data)); c != 200 {
		t.Errorf("admin API on --admin-listen: %d, want 200", c)
	}

	// Unix socket, 0600.
	data = filepath.Join(dir, "unix")
	sock := filepath.Join(dir, "admin.sock")
	addr = freeAddr(t)
	startDaemon(t, "--data", data, "--listen", addr, "--admin-listen", "unix:"+sock)
	waitGet(t, http.DefaultClient, "http://"+addr+"/healthz").Body.Close()
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin socket: %v %v, want a 0600 socket", err, fi)
	}
	uc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	if c := get(uc, "http://bainoded/api/v1/nodes", token(data)); c != 200 {
		t.Errorf("admin API on the unix socket: %d, want 200", c)
	}
	if c := get(http.DefaultClient, "http://"+addr+"/api/v1/nodes", token(data)); c != 404 {
		t.Errorf("admin API on the machines' port: %d, want 404", c)
	}

	// One port, on request.
	data = filepath.Join(dir, "single")
	addr = freeAddr(t)
	startDaemon(t, "--data", data, "--listen", addr, "--single-port")
	waitGet(t, http.DefaultClient, "http://"+addr+"/healthz").Body.Close()
	if c := get(http.DefaultClient, "http://"+addr+"/api/v1/nodes", token(data)); c != 200 {
		t.Errorf("--single-port admin API: %d, want 200", c)
	}

	// Off loopback without TLS: refused before anything starts.
	for _, a := range []string{"0.0.0.0:9", ":9", "10.1.2.3:9", "[::]:9", "example.com:9"} {
		out, err := exec.Command(binary, "--data", filepath.Join(dir, "refused"), "--listen", "127.0.0.1:0",
			"--admin-listen", a).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "is not on loopback") {
			t.Errorf("--admin-listen %s without TLS: %v %q, want refusal", a, err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "refused")); err == nil {
		t.Errorf("a refused start created --data")
	}
}
