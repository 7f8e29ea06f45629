package serve_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/serve"
	"github.com/lablup/bainode/templates"
)

// realServers are n servers with the real renderer on one memory store, as
// members of a cluster share one inventory.
func realServers(t *testing.T, n int) (urls []string, store *inventory.Memory, admin string) {
	t.Helper()
	r, err := render.New(render.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	store = inventory.NewMemory()
	for range n {
		srv := httptest.NewServer(serve.New(serve.Config{Store: store, Renderer: serve.SiteRenderer(r), Validator: serve.ValidateSite}))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	admin, _ = inventory.NewToken()
	if err := store.PutAdminToken(t.Context(), inventory.HashToken(admin)); err != nil {
		t.Fatal(err)
	}
	return urls, store, admin
}

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var endpointToken = regexp.MustCompile(`endpoint: \S+/report/bai-extra/(\S+)\n`)

// servedToken is the node token in the vendor-data a server hands out.
func servedToken(t *testing.T, url string) string {
	t.Helper()
	code, body := call(t, "GET", url+"/nocloud/bai-extra/vendor-data", "", "")
	m := endpointToken.FindStringSubmatch(body)
	if code != 200 || m == nil {
		t.Fatalf("vendor-data: %d %q", code, body)
	}
	return m[1]
}

func TestNodeTokenRotation(t *testing.T) {
	urls, store, admin := realServers(t, 2)
	a, b := urls[0], urls[1]
	site, _ := fs.ReadFile(templates.FS, "examples/cluster.yaml")
	if code, body := call(t, "PUT", a+"/api/v1/site", admin, string(site)); code != 200 {
		t.Fatalf("PUT site: %d %s", code, body)
	}
	const node = `{"macs": ["52:54:00:99:00:01"], "role": "agent"}`
	put := func() nodeAnswer {
		t.Helper()
		code, body := call(t, "PUT", a+"/api/v1/nodes/bai-extra", admin, node)
		var out nodeAnswer
		if code != 200 || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("PUT node: %d %s", code, body)
		}
		return out
	}
	report := func(token string) int {
		t.Helper()
		code, _ := call(t, "POST", b+"/report/bai-extra/"+token, "", startEvent)
		return code
	}
	t0 := put().Token
	// Both servers have cached the seed before the rotation.
	for _, u := range urls {
		if got := servedToken(t, u); got != t0 {
			t.Fatalf("served token %q, want the one PUT answered", got)
		}
	}
	if code := report(t0); code != 204 {
		t.Fatalf("report with the first token: %d", code)
	}

	code, body := call(t, "POST", a+"/api/v1/nodes/bai-extra/token", admin, "")
	var rot nodeAnswer
	if code != 200 || json.Unmarshal([]byte(body), &rot) != nil || rot.Token == "" || rot.Token == t0 {
		t.Fatalf("rotate: %d %s", code, body)
	}
	if code := report(t0); code != 403 {
		t.Errorf("old token after rotation: got %d, want 403", code)
	}
	// The server that rotated dropped its cache; the other one sees the
	// store revision change.
	for _, u := range urls {
		if got := servedToken(t, u); got != rot.Token {
			t.Errorf("%s serves token %q after rotation, want the new one", u, got)
		}
	}
	if code := report(servedToken(t, b)); code != 204 {
		t.Errorf("new token from vendor-data: got %d, want 204", code)
	}
	// Editing the node keeps the rotated token.
	if got := put().Token; got != rot.Token {
		t.Errorf("PUT after rotation answered token %q, want the rotated one", got)
	}

	if code, body := call(t, "DELETE", a+"/api/v1/nodes/bai-extra/token", admin, ""); code != 204 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if code := report(rot.Token); code != 403 {
		t.Errorf("revoked token: got %d, want 403", code)
	}
	if code, _ := call(t, "POST", b+"/phone-home/bai-extra/"+servedToken(t, b), "", "hostname=x"); code != 403 {
		t.Errorf("phone-home with the served token after revocation: got %d, want 403", code)
	}
	if got := put(); got.Token != "" || !got.TokenRevoked {
		t.Errorf("PUT of a revoked node: got %+v, want no token and revoked", got)
	}
	if code, body := call(t, "GET", a+"/api/v1/nodes/bai-extra", admin, ""); code != 200 || !strings.Contains(body, `"token_revoked": true`) {
		t.Errorf("GET revoked node: %d %s", code, body)
	}
	if code := report(rot.Token); code != 403 {
		t.Errorf("revoked token after PUT: got %d, want 403", code)
	}

	code, body = call(t, "POST", a+"/api/v1/nodes/bai-extra/token", admin, "")
	var again nodeAnswer
	if code != 200 || json.Unmarshal([]byte(body), &again) != nil || again.Token == rot.Token || again.Token == t0 {
		t.Fatalf("rotate after revoke: %d %s", code, body)
	}
	if code := report(servedToken(t, b)); code != 204 {
		t.Errorf("token rotated after revocation: got %d, want 204", code)
	}

	// A deleted and re-added hostname gets none of its earlier tokens.
	if code, _ := call(t, "DELETE", a+"/api/v1/nodes/bai-extra", admin, ""); code != 204 {
		t.Fatal("delete node")
	}
	if got := put().Token; got == t0 || got == rot.Token || got == again.Token {
		t.Errorf("re-added node got an earlier token back")
	}
	for _, tok := range []string{t0, rot.Token, again.Token} {
		if code := report(tok); code != 403 {
			t.Errorf("earlier token of a re-added node: got %d, want 403", code)
		}
	}

	for _, m := range []string{"POST", "DELETE"} {
		if code, _ := call(t, m, a+"/api/v1/nodes/ghost/token", admin, ""); code != 404 {
			t.Errorf("%s token of an unknown node: got %d, want 404", m, code)
		}
		if code, _ := call(t, m, a+"/api/v1/nodes/bai-extra/token", "", ""); code != 401 {
			t.Errorf("%s token without the admin token: got %d, want 401", m, code)
		}
	}
	if n, _ := store.Node(t.Context(), "bai-extra"); n.TokenHash == "" {
		t.Errorf("re-added node has no token")
	}
}

type nodeAnswer struct {
	Token        string `json:"token"`
	TokenRevoked bool   `json:"token_revoked"`
}

type tokenAnswer struct {
	ID      int64  `json:"id"`
	Prefix  string `json:"prefix"`
	Name    string `json:"name"`
	Current bool   `json:"current"`
	Token   string `json:"token"`
}

func TestAdminTokens(t *testing.T) {
	urls, store, admin := realServers(t, 1)
	u := urls[0] + "/api/v1/tokens"
	list := func(token string) []tokenAnswer {
		t.Helper()
		code, body := call(t, "GET", u, token, "")
		var out []tokenAnswer
		if code != 200 || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("list: %d %s", code, body)
		}
		if strings.Contains(body, inventory.HashToken(admin)) || strings.Contains(body, admin) {
			t.Errorf("list shows a token or its whole hash: %s", body)
		}
		return out
	}
	first := list(admin)
	if len(first) != 1 || !first[0].Current || first[0].Name != "" || first[0].Prefix != inventory.HashToken(admin)[:12] {
		t.Fatalf("list of the file token: %+v", first)
	}

	code, body := call(t, "POST", u, admin, `{"name": "ci"}`)
	var ci tokenAnswer
	if code != 201 || json.Unmarshal([]byte(body), &ci) != nil || len(ci.Token) < 32 || ci.Name != "ci" || ci.ID == first[0].ID {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _ := call(t, "GET", urls[0]+"/api/v1/nodes", ci.Token, ""); code != 200 {
		t.Errorf("new token: got %d, want 200", code)
	}
	if l := list(ci.Token); len(l) != 2 || l[0].Current || !l[1].Current || l[1].Token != "" {
		t.Errorf("list with the new token: %+v", l)
	}
	for _, bad := range []string{``, `{}`, `{"name": ""}`, `{"name": " x"}`, `{"name": "a\nb"}`,
		`{"name": "x", "token": "mine"}`, fmt.Sprintf(`{"name": %q}`, strings.Repeat("n", 65))} {
		if code, body := call(t, "POST", u, admin, bad); code != 400 {
			t.Errorf("create with %s: got %d %s, want 400", bad, code, body)
		}
	}

	// No one revokes the token in their hand.
	code, body = call(t, "DELETE", fmt.Sprintf("%s/%d", u, first[0].ID), admin, "")
	if code != 409 || !strings.Contains(body, "cannot revoke itself") {
		t.Errorf("self-revoke: got %d %q, want 409", code, body)
	}
	if code, body := call(t, "DELETE", fmt.Sprintf("%s/%d", u, ci.ID), admin, ""); code != 204 {
		t.Fatalf("revoke ci: %d %s", code, body)
	}
	if code, body := call(t, "GET", urls[0]+"/api/v1/nodes", ci.Token, ""); code != 401 || !strings.Contains(body, "revoked") {
		t.Errorf("revoked token: got %d %q, want 401", code, body)
	}
	for path, want := range map[string]int{fmt.Sprint(ci.ID): 404, "999": 404, "x": 400, "0": 400} {
		if code, _ := call(t, "DELETE", u+"/"+path, admin, ""); code != want {
			t.Errorf("DELETE tokens/%s: got %d, want %d", path, code, want)
		}
	}

	// Revoking the file's token with another one: the file cannot bring it back.
	code, body = call(t, "POST", u, admin, `{"name": "ops"}`)
	var ops tokenAnswer
	if code != 201 || json.Unmarshal([]byte(body), &ops) != nil {
		t.Fatalf("create ops: %d %s", code, body)
	}
	if code, body := call(t, "DELETE", fmt.Sprintf("%s/%d", u, first[0].ID), ops.Token, ""); code != 204 {
		t.Fatalf("revoke the file token: %d %s", code, body)
	}
	if code, _ := call(t, "GET", u, admin, ""); code != 401 {
		t.Errorf("revoked file token: got %d, want 401", code)
	}
	if err := store.PutAdminToken(t.Context(), inventory.HashToken(admin)); !errors.Is(err, inventory.ErrRevoked) {
		t.Errorf("re-registering a revoked token: got %v, want ErrRevoked", err)
	}
	if l := list(ops.Token); len(l) != 1 || l[0].Name != "ops" {
		t.Errorf("tokens left: %+v", l)
	}
}
