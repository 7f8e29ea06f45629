package serve_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/serve"
)

// FuzzHandler sends arbitrary requests to the whole handler. Nothing may
// panic, the admin API must refuse them all (the fuzzer knows no token),
// and a node's data may only come back for a path naming that node.
// The committed corpus is in testdata/fuzz/FuzzHandler.
func FuzzHandler(f *testing.F) {
	fx := newFixture(f, nil)
	h := serve.New(serve.Config{Store: fx.store, Renderer: fx.render, Validator: failingValidator,
		Kernel: "http://boot/vmlinuz", Initrd: "http://boot/initrd"})

	f.Add("GET", "/nocloud/52:54:00:aa:bb:01/user-data", []byte(nil))
	f.Add("POST", "/phone-home/gpu1/x", []byte("instance_id=i"))
	f.Fuzz(func(t *testing.T, method, target string, body []byte) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !validMethod(method) {
			return
		}
		req := &http.Request{Method: method, URL: u, Host: "seed.lan", RemoteAddr: "127.0.0.1:4000",
			Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Body: httpBody(body), ContentLength: int64(len(body))}
		req = req.WithContext(t.Context())
		if method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		if strings.HasPrefix(u.Path, "/api/") && rec.Code < 300 {
			t.Fatalf("%s %s reached the admin API: %d", method, target, rec.Code)
		}
		if method != "GET" && method != "HEAD" && rec.Code < 300 {
			t.Fatalf("%s %s wrote without a token: %d", method, target, rec.Code)
		}
		out := rec.Body.Bytes()
		for _, n := range testNodes {
			leaked := bytes.Contains(out, []byte(marker(n.Hostname))) || bytes.Contains(out, []byte(fx.tokens[n.Hostname]))
			if leaked && !names(u.Path, n) {
				t.Fatalf("%s %s returned %s's data:\n%s", method, target, n.Hostname, out)
			}
		}
	})
}

func validMethod(m string) bool {
	return m != "" && strings.IndexFunc(m, func(r rune) bool { return r < 'A' || r > 'Z' }) < 0
}

// names reports whether path is /nocloud/{key}/... or /ipxe/{key} with a
// key that independently resolves to n.
func names(path string, n inventory.Node) bool {
	parts := strings.Split(path, "/")
	if len(parts) < 3 || parts[0] != "" || (parts[1] != "nocloud" && parts[1] != "ipxe") {
		return false
	}
	key := parts[2]
	if mac, err := inventory.NormalizeMAC(key); err == nil && slices.Contains(n.MACs, mac) {
		return true
	}
	return strings.EqualFold(key, n.Hostname)
}

func httpBody(b []byte) *readCloser { return &readCloser{bytes.NewReader(b)} }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
