package serve_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/serve"
)

// testRenderer writes each node's name, a per-node marker and its URLs into
// every file, so tests can tell whose data a response holds. A site line
// "fail: HOST" makes that node fail to render.
type testRenderer struct{ calls atomic.Int64 }

func (tr *testRenderer) Render(site []byte, n inventory.Node, u serve.URLs) (serve.Files, error) {
	tr.calls.Add(1)
	if bytes.Contains(site, []byte("fail: "+n.Hostname+"\n")) {
		return serve.Files{}, errors.New("cannot render this node")
	}
	common := fmt.Sprintf("host: %s\nmarker: %s\nsite: %q\noverrides: %q\n", n.Hostname, marker(n.Hostname), site, n.Overrides)
	return serve.Files{
		UserData: []byte("#cloud-config\n" + common +
			"phone_home: {url: " + u.PhoneHome + ", post: all}\n" +
			"reporting: {bainode: {type: webhook, endpoint: " + u.Report + "}}\n"),
		MetaData:      []byte("instance-id: " + n.Hostname + "\nlocal-hostname: " + n.Hostname + "\n" + common),
		NetworkConfig: []byte("version: 2\n" + common),
		// VendorData left nil: served empty.
	}, nil
}

func marker(host string) string { return "marker-" + host + "-x" }

func failingValidator(site []byte) error {
	if bytes.Contains(site, []byte("invalid")) {
		return errors.New("site.yaml:1:1: invalid is not a key")
	}
	return nil
}

type fixture struct {
	t      *testing.T
	store  *inventory.Memory
	render *testRenderer
	srv    *httptest.Server
	admin  string
	tokens map[string]string // hostname -> node token
}

var testNodes = []inventory.Node{
	{Hostname: "gpu1", MACs: []string{"52:54:00:aa:bb:01", "52:54:00:aa:bb:02"}, IP: "127.0.0.1", Role: "agent"},
	{Hostname: "gpu2", MACs: []string{"52:54:00:aa:bb:03"}, IP: "10.9.9.9", Role: "agent"},
	{Hostname: "mgr", MACs: []string{"52:54:00:aa:bb:04"}, Role: "manager"},
}

// newFixture starts a server on 127.0.0.1 with a site and testNodes.
func newFixture(t testing.TB, tweak func(*serve.Config)) *fixture {
	f := &fixture{store: inventory.NewMemory(), render: &testRenderer{}, tokens: map[string]string{}}
	if tt, ok := t.(*testing.T); ok {
		f.t = tt
	}
	cfg := serve.Config{Store: f.store, Renderer: f.render, Validator: failingValidator,
		Kernel: "http://boot/vmlinuz", Initrd: "http://boot/initrd", KernelArgs: "ip=dhcp autoinstall"}
	if tweak != nil {
		tweak(&cfg)
	}
	f.srv = httptest.NewServer(serve.New(cfg)) // listens on 127.0.0.1
	t.Cleanup(f.srv.Close)
	tok, err := inventory.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	f.admin = tok
	f.store.PutAdminToken(t.Context(), inventory.HashToken(tok))

	if code, body := f.do("PUT", "/api/v1/site", f.admin, "site: one\n"); code != 200 {
		t.Fatalf("PUT site: %d %s", code, body)
	}
	for _, n := range testNodes {
		in, _ := json.Marshal(map[string]any{"macs": n.MACs, "ip": n.IP, "role": n.Role})
		code, body := f.do("PUT", "/api/v1/nodes/"+n.Hostname, f.admin, string(in))
		if code != 200 {
			t.Fatalf("PUT node %s: %d %s", n.Hostname, code, body)
		}
		var out struct{ Token string }
		json.Unmarshal([]byte(body), &out)
		f.tokens[n.Hostname] = out.Token
	}
	return f
}

// do sends a request with an optional bearer token and returns code and body.
func (f *fixture) do(method, path, token, body string, hdr ...string) (int, string) {
	resp := f.req(method, path, token, body, hdr...)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *fixture) req(method, path, token, body string, hdr ...string) *http.Response {
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		panic(err)
	}
	return resp
}

// raw sends path exactly as given, so the client cannot clean it up.
func (f *fixture) raw(path string) (int, string) {
	return f.rawHost(path, f.srv.Listener.Addr().String())
}

// rawHost is raw with any Host header.
func (f *fixture) rawHost(path, host string) (int, string) {
	c, err := net.DialTimeout("tcp", f.srv.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// want renders node host directly, as the server should have.
func (f *fixture) want(host, file string) string {
	n, err := f.store.Node(f.t.Context(), host)
	if err != nil {
		f.t.Fatal(err)
	}
	site, _ := f.store.Site(f.t.Context())
	u := serve.URLs{Base: f.srv.URL, Seed: f.srv.URL + "/nocloud/" + host + "/",
		Report:    f.srv.URL + "/report/" + host + "/" + f.tokens[host],
		PhoneHome: f.srv.URL + "/phone-home/" + host + "/" + f.tokens[host]}
	files, err := (&testRenderer{}).Render(site.YAML, n, u)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(map[string][]byte{"user-data": files.UserData, "meta-data": files.MetaData,
		"vendor-data": files.VendorData, "network-config": files.NetworkConfig}[file])
}

func (f *fixture) events(host string) []inventory.Event {
	ev, err := f.store.Events(f.t.Context(), host, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return ev
}
