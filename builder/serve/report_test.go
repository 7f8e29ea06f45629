package serve_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/serve"
)

const startEvent = `{"name": "init-network/config-ssh", "description": "running config-ssh", "event_type": "start", "origin": "cloudinit", "timestamp": 1700000000.5}`
const finishEvent = `{"name": "modules-final", "description": "running modules for final", "event_type": "finish", "origin": "cloudinit", "timestamp": 1700000001.0, "result": "FAIL"}`

var phoneForm = url.Values{"instance_id": {"iid-gpu1"}, "hostname": {"gpu1"}, "fqdn": {"gpu1.lan"},
	"pub_key_rsa": {"ssh-rsa AAAA"}, "pub_key_ed25519": {"ssh-ed25519 AAAA"}, "pub_key_dsa": {"N/A"}}.Encode()

const formType = "application/x-www-form-urlencoded"

func TestReport(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.tokens["gpu1"]
	cases := []struct {
		name, path, bearer, body string
		want                     int
	}{
		{"token in path", "/report/gpu1/" + tok, "", startEvent, 204},
		{"token in header", "/report/gpu1", tok, finishEvent, 204},
		{"missing token", "/report/gpu1", "", startEvent, 401},
		{"wrong token", "/report/gpu1/" + tok + "x", "", startEvent, 403},
		{"wrong header token", "/report/gpu1", "nope", startEvent, 403},
		{"other node's token", "/report/gpu2/" + tok, "", startEvent, 403},
		{"other node's token in header", "/report/gpu2", tok, startEvent, 403},
		{"unknown node", "/report/ghost/" + tok, "", startEvent, 403},
		{"bad hostname", "/report/GH%20ost/" + tok, "", startEvent, 403},
		{"not json", "/report/gpu1/" + tok, "", "hello", 400},
		{"not an event", "/report/gpu1/" + tok, "", `{"name": "x", "event_type": "bogus"}`, 400},
	}
	for _, c := range cases {
		if code, body := f.do("POST", c.path, c.bearer, c.body); code != c.want {
			t.Errorf("%s: got %d %q, want %d", c.name, code, body, c.want)
		}
	}
	ev := f.events("gpu1")
	if len(ev) != 2 {
		t.Fatalf("gpu1 events: got %+v, want 2", ev)
	}
	if ev[0].Stage != "init-network/config-ssh" || ev[0].Result != "start" || ev[0].Detail != "running config-ssh" {
		t.Errorf("start event: got %+v", ev[0])
	}
	if ev[1].Stage != "modules-final" || ev[1].Result != "fail" || ev[1].Time.IsZero() {
		t.Errorf("finish event: got %+v", ev[1])
	}
	for _, h := range []string{"gpu2", "ghost"} {
		if ev := f.events(h); len(ev) != 0 {
			t.Errorf("%s got events written with another node's token: %+v", h, ev)
		}
	}
}

func TestPhoneHome(t *testing.T) {
	f := newFixture(t, nil)
	tok, other := f.tokens["gpu1"], f.tokens["mgr"]
	cases := []struct {
		name, path, bearer string
		want               int
	}{
		{"token in path", "/phone-home/gpu1/" + tok, "", 204},
		{"token in header", "/phone-home/gpu1", tok, 204},
		{"missing token", "/phone-home/gpu1", "", 401},
		{"wrong token", "/phone-home/gpu1/x" + tok, "", 403},
		{"other node's token", "/phone-home/gpu1/" + other, "", 403},
		{"own token, other node", "/phone-home/mgr/" + tok, "", 403},
		{"unknown node", "/phone-home/ghost/" + tok, "", 403},
	}
	for _, c := range cases {
		if code, body := f.do("POST", c.path, c.bearer, phoneForm, "Content-Type", formType); code != c.want {
			t.Errorf("%s: got %d %q, want %d", c.name, code, body, c.want)
		}
	}
	ev := f.events("gpu1")
	if len(ev) != 2 {
		t.Fatalf("gpu1 events: got %+v, want 2", ev)
	}
	want := "instance_id=iid-gpu1 hostname=gpu1 fqdn=gpu1.lan keys=ed25519,rsa"
	if ev[0].Stage != "phone-home" || ev[0].Result != "done" || ev[0].Detail != want {
		t.Errorf("phone-home event: got %+v, want detail %q", ev[0], want)
	}
	if ev := f.events("mgr"); len(ev) != 0 {
		t.Errorf("mgr got events from gpu1's token: %+v", ev)
	}
}

func TestBodyLimits(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.tokens["gpu1"]
	big := strings.Repeat("a", 5<<20)
	cases := []struct {
		name, method, path, bearer, body, ctype string
	}{
		{"report", "POST", "/report/gpu1/" + tok, "", `{"name": "` + big + `"}`, "application/json"},
		{"phone-home", "POST", "/phone-home/gpu1/" + tok, "", "instance_id=" + big, formType},
		{"site", "PUT", "/api/v1/site", f.admin, big, "application/yaml"},
		{"node", "PUT", "/api/v1/nodes/gpu1", f.admin, `{"overrides": "` + big + `"}`, "application/json"},
	}
	for _, c := range cases {
		if code, _ := f.do(c.method, c.path, c.bearer, c.body, "Content-Type", c.ctype); code != 413 {
			t.Errorf("%s with a %d byte body: got %d, want 413", c.name, len(c.body), code)
		}
	}
	if ev := f.events("gpu1"); len(ev) != 0 {
		t.Errorf("oversized bodies stored events: %+v", ev)
	}
	// Just under the limit still works.
	ok := strings.Repeat("b", 200<<10)
	if code, body := f.do("POST", "/report/gpu1/"+tok, "", `{"name": "x", "event_type": "start", "description": "`+ok+`"}`); code != 204 {
		t.Errorf("200 KiB event: got %d %q", code, body)
	}
	if ev := f.events("gpu1"); len(ev) != 1 || len(ev[0].Detail) != 2048 {
		t.Errorf("long description not clipped: %d events", len(ev))
	}
}

// TestReportTokenFollowsInventory checks that cached token hashes are
// dropped when the node changes, here or on another member.
func TestReportTokenFollowsInventory(t *testing.T) {
	f := newFixture(t, func(c *serve.Config) { c.RevisionTTL = 0 })
	tok := f.tokens["gpu1"]
	if code, body := f.do("POST", "/report/gpu1/"+tok, "", startEvent); code != 204 {
		t.Fatalf("report: %d %s", code, body)
	}
	// Another member revokes the token: only the store's revision says so.
	n, err := f.store.Node(t.Context(), "gpu1")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.SetNodeToken(t.Context(), "gpu1", n.TokenGen, ""); err != nil {
		t.Fatal(err)
	}
	if code, _ := f.do("POST", "/report/gpu1/"+tok, "", startEvent); code != 403 {
		t.Errorf("report after the token was cleared elsewhere: %d, want 403", code)
	}
	// Deleting through this server drops the cache at once.
	tok2 := f.tokens["gpu2"]
	if code, _ := f.do("POST", "/report/gpu2/"+tok2, "", startEvent); code != 204 {
		t.Fatalf("report gpu2: %d", code)
	}
	if code, _ := f.do("DELETE", "/api/v1/nodes/gpu2", f.admin, ""); code/100 != 2 {
		t.Fatalf("delete gpu2: %d", code)
	}
	if code, _ := f.do("POST", "/report/gpu2/"+tok2, "", startEvent); code != 403 {
		t.Errorf("report from a deleted node: %d, want 403", code)
	}
}
