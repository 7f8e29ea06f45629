package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTermSafe(t *testing.T) {
	for in, want := range map[string]string{
		"modules-final":           "modules-final",
		"init\x1b]0;pwned\x07":    `init\x1b]0;pwned\x07`,
		"a\x1b[2J\x1b[Hb":         `a\x1b[2J\x1b[Hb`,
		"c1\u009b31m":             `c1\x9b31m`,
		"line\rover\nnext\x7f":    `line\x0dover\x0anext\x7f`,
		"bidi\u202etxt.exe\u2028": `bidi\u202etxt.exe\u2028`,
		"bad\xffutf8":             `bad\xffutf8`,
		"ünïcode ok":              "ünïcode ok",
	} {
		if got := termSafe(in); got != want {
			t.Errorf("termSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStatusEscapesNodeText: event text with terminal control sequences
// never reaches the terminal, whether bainoded strips it (the real server)
// or a server sends it as is (a compromised or older member).
func TestStatusEscapesNodeText(t *testing.T) {
	f := newFleetServer(t)
	f.ok("nodes", "add", "bai-vm", "--mac", "52:54:00:12:34:56")
	f.report("bai-vm", "report", "application/json",
		`{"name": "init\u001b]0;pwned\u0007\u001b[2J", "event_type": "finish", "result": "SUCCESS", "description": "x\u001b[31mred\u009b1m"}`)
	for _, args := range [][]string{{"status"}, {"nodes", "show", "bai-vm"}} {
		if out := f.ok(args...); strings.ContainsAny(out, "\x1b\x07\u009b") {
			t.Errorf("%v passed control characters through:\n%q", args, out)
		}
	}

	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/status" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"nodes": [{"node": "n1\u001b[8m", "stage": "init\u001b]0;pwned\u0007/x", "result": "fail\u009b2J",
			"time": "2026-01-01T00:00:00Z", "detail": "d\u001b[31m"}]}`))
	}))
	defer hostile.Close()
	out, errs, code := bainode(t, "", "status", "--server", hostile.URL, "--token", "irrelevant-token-0123456789")
	if code != 0 || strings.ContainsAny(out, "\x1b\x07\u009b") {
		t.Errorf("status from a hostile server: exit %d, %q %s", code, out, errs)
	}
	for _, want := range []string{`n1\x1b[8m`, `init\x1b]0;pwned\x07`, `fail\x9b2J`} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %s:\n%s", want, out)
		}
	}
}
