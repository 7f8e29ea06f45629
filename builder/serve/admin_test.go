package serve_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/spec"
)

func TestAdminAuth(t *testing.T) {
	f := newFixture(t, nil)
	for _, tok := range []string{"", "wrong", f.tokens["gpu1"]} {
		for _, p := range []string{"/api/v1/nodes", "/api/v1/status", "/api/v1/site", "/api/v1/nowhere"} {
			if code, body := f.do("GET", p, tok, ""); code != 401 || strings.Contains(body, "gpu1") {
				t.Errorf("GET %s with token %q: got %d %q, want 401", p, tok, code, body)
			}
		}
	}
	if code, _ := f.do("PUT", "/api/v1/nodes/evil", f.tokens["gpu1"], `{"macs": []}`); code != 401 {
		t.Errorf("node token on the admin API: got %d, want 401", code)
	}
}

func TestAdminNodes(t *testing.T) {
	f := newFixture(t, nil)
	code, body := f.do("GET", "/api/v1/nodes", f.admin, "")
	var nodes []map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &nodes) != nil || len(nodes) != 3 {
		t.Fatalf("list: got %d %s", code, body)
	}
	if strings.Contains(body, "token") || strings.Contains(body, f.tokens["gpu1"]) {
		t.Errorf("list exposes tokens: %s", body)
	}
	code, body = f.do("PUT", "/api/v1/nodes/cpu1", f.admin,
		`{"macs": ["AA-BB-CC-DD-EE-01", "aabb.ccdd.ee02"], "ip": "10.0.0.7", "role": "agent", "overrides": "x: 1\n"}`)
	if code != 200 || !strings.Contains(body, `"aa:bb:cc:dd:ee:01"`) || !strings.Contains(body, `"token"`) {
		t.Fatalf("create: got %d %s", code, body)
	}
	if code, body := f.do("GET", "/nocloud/aa:bb:cc:dd:ee:02/user-data", "", ""); code != 200 || !strings.Contains(body, `x: 1`) {
		t.Errorf("new node's seed: got %d %q", code, body)
	}
	bad := map[string]struct {
		body string
		want int
	}{
		"bad mac":         {`{"macs": ["zz"]}`, 400},
		"duplicate mac":   {`{"macs": ["aa:bb:cc:dd:ee:03", "AABBCCDDEE03"]}`, 400},
		"bad ip":          {`{"ip": "10.0.0"}`, 400},
		"unknown field":   {`{"mac": "aa:bb:cc:dd:ee:03"}`, 400},
		"other hostname":  {`{"hostname": "x"}`, 400},
		"set token":       {`{"token": "mine"}`, 400},
		"not json":        {`macs: []`, 400},
		"mac of gpu1":     {`{"macs": ["52:54:00:aa:bb:01"]}`, 409},
		"override breaks": {`{"overrides": "fail"}`, 200}, // fine: only the site decides here
	}
	for name, c := range bad {
		if code, body := f.do("PUT", "/api/v1/nodes/cpu2", f.admin, c.body); code != c.want {
			t.Errorf("%s: got %d %q, want %d", name, code, body, c.want)
		}
	}
	if code, _ := f.do("PUT", "/api/v1/nodes/Bad_Name", f.admin, `{}`); code != 400 {
		t.Errorf("bad hostname: got %d, want 400", code)
	}
	if code, body := f.do("GET", "/api/v1/nodes/cpu1", f.admin, ""); code != 200 || !strings.Contains(body, `"10.0.0.7"`) {
		t.Errorf("get: got %d %s", code, body)
	}
	if code, _ := f.do("DELETE", "/api/v1/nodes/cpu1", f.admin, ""); code != 204 {
		t.Errorf("delete: got %d", code)
	}
	for _, p := range []string{"/api/v1/nodes/cpu1"} {
		if code, _ := f.do("GET", p, f.admin, ""); code != 404 {
			t.Errorf("GET %s after delete: got %d", p, code)
		}
	}
	if code, _ := f.do("DELETE", "/api/v1/nodes/cpu1", f.admin, ""); code != 404 {
		t.Errorf("second delete: got %d, want 404", code)
	}
	if code, _ := f.do("GET", "/nocloud/aa:bb:cc:dd:ee:02/user-data", "", ""); code != 404 {
		t.Errorf("seed of deleted node: got %d, want 404", code)
	}
}

func TestAdminSite(t *testing.T) {
	f := newFixture(t, nil)
	problems := []string{"Accept", spec.ProblemsMediaType + ", application/json"}
	// A validator's plain error is the answer's text, with no problems.
	resp := f.req("PUT", "/api/v1/site", f.admin, "invalid: true\n", problems...)
	if rej := rejectionOf(t, resp); rej.Error != "site.yaml:1:1: invalid is not a key" || rej.Problems != nil {
		t.Errorf("invalid site: got %+v, want the validator's text", rej)
	}
	// A node the renderer refuses is one problem, its text as before.
	resp = f.req("PUT", "/api/v1/site", f.admin, "fail: gpu2\n", problems...)
	if rej := rejectionOf(t, resp); len(rej.Problems) != 1 || rej.Problems[0].Msg != "rendering node gpu2: cannot render this node" ||
		rej.Problems[0].Line != 0 || !strings.Contains(rej.Error, "render failed: node gpu2: cannot render this node") {
		t.Errorf("site breaking a node: got %+v", rej)
	}
	// A client that does not ask for problems (bainode before they were
	// structured, curl) prints the body as it is: it gets the same text.
	resp = f.req("PUT", "/api/v1/site", f.admin, "fail: gpu2\n", "Accept", "application/json")
	if ct, body := resp.Header.Get("Content-Type"), readAll(resp); resp.StatusCode != 400 || !strings.HasPrefix(ct, "text/plain") ||
		strings.TrimSpace(body) != "render failed: node gpu2: cannot render this node" {
		t.Errorf("site breaking a node, old client: %d %q %q", resp.StatusCode, ct, body)
	}
	if code, body := f.do("PUT", "/api/v1/site", f.admin, "site: two\n"); code != 200 || !strings.Contains(body, `"id": 2`) {
		t.Errorf("good site: got %d %s", code, body)
	}
	resp = f.req("GET", "/api/v1/site", f.admin, "")
	if body := readAll(resp); body != "site: two\n" || resp.Header.Get("Bainode-Site-Version") != "2" {
		t.Errorf("get site: got %q version %q", body, resp.Header.Get("Bainode-Site-Version"))
	}
	code, body := f.do("GET", "/api/v1/site/history", f.admin, "")
	var hist []struct{ ID int64 }
	if code != 200 || json.Unmarshal([]byte(body), &hist) != nil || len(hist) != 2 || hist[0].ID != 2 {
		t.Errorf("history: got %d %s", code, body)
	}
	// A node the current site cannot render is refused.
	if code, body := f.do("PUT", "/api/v1/site", f.admin, "fail: gpu9\n"); code != 200 {
		t.Fatalf("site: %d %s", code, body)
	}
	if code, body := f.do("PUT", "/api/v1/nodes/gpu9", f.admin, `{}`); code != 400 || !strings.Contains(body, "cannot render") {
		t.Errorf("node the site cannot render: got %d %q", code, body)
	}
}

func TestAdminStatus(t *testing.T) {
	f := newFixture(t, nil)
	f.do("POST", "/report/gpu1/"+f.tokens["gpu1"], "", startEvent)
	f.do("POST", "/phone-home/gpu1/"+f.tokens["gpu1"], "", phoneForm, "Content-Type", formType)
	f.do("POST", "/report/mgr/"+f.tokens["mgr"], "", finishEvent)
	code, body := f.do("GET", "/api/v1/status", f.admin, "")
	var st struct {
		Nodes []struct{ Node, Stage, Result, Role string }
	}
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || len(st.Nodes) != 3 {
		t.Fatalf("status: got %d %s", code, body)
	}
	got := map[string]string{}
	for _, n := range st.Nodes {
		got[n.Node] = n.Stage + "/" + n.Result
	}
	want := map[string]string{"gpu1": "phone-home/done", "gpu2": "/pending", "mgr": "modules-final/fail"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("status of %s: got %q, want %q", k, got[k], v)
		}
	}
	code, body = f.do("GET", "/api/v1/nodes/gpu1/events?limit=1", f.admin, "")
	if code != 200 || !strings.Contains(body, `"phone-home"`) || strings.Contains(body, "config-ssh") {
		t.Errorf("events limit 1: got %d %s", code, body)
	}
	if code, _ := f.do("GET", "/api/v1/nodes/gpu1/events?limit=x", f.admin, ""); code != 400 {
		t.Errorf("bad limit: got %d", code)
	}
	if code, _ := f.do("GET", "/api/v1/cluster", f.admin, ""); code != 404 {
		t.Errorf("cluster on a memory store: got %d, want 404", code)
	}
}
