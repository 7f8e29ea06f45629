package serve_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/serve"
)

// TestHandlersSplit: the machine handler never serves the admin API, even
// with a valid admin token, and the admin handler serves no seed.
func TestHandlersSplit(t *testing.T) {
	store := inventory.NewMemory()
	tok, _ := inventory.NewToken()
	store.PutAdminToken(t.Context(), inventory.HashToken(tok))
	machine, admin := serve.Handlers(serve.Config{Store: store, Renderer: &testRenderer{}})
	ms, as := httptest.NewServer(machine), httptest.NewServer(admin)
	defer ms.Close()
	defer as.Close()
	get := func(base, method, path, body string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get(as.URL, "PUT", "/api/v1/site", "site: one\n"); c != 200 {
		t.Fatalf("admin PUT site: %d", c)
	}
	if c := get(as.URL, "PUT", "/api/v1/nodes/gpu1", `{"macs": ["52:54:00:aa:bb:01"]}`); c != 200 {
		t.Fatalf("admin PUT node: %d", c)
	}
	for _, tc := range []struct {
		base, method, path string
		want               int
	}{
		{ms.URL, "GET", "/api/v1/nodes", 404},
		{ms.URL, "PUT", "/api/v1/site", 404},
		{ms.URL, "GET", "/api/v1/status", 404},
		{ms.URL, "GET", "/nocloud/gpu1/meta-data", 200},
		{ms.URL, "GET", "/healthz", 200},
		{as.URL, "GET", "/api/v1/nodes", 200},
		{as.URL, "GET", "/nocloud/gpu1/meta-data", 404},
		{as.URL, "GET", "/healthz", 200},
	} {
		if c := get(tc.base, tc.method, tc.path, ""); c != tc.want {
			t.Errorf("%s %s on %s handler: %d, want %d", tc.method, tc.path,
				map[bool]string{true: "machine", false: "admin"}[tc.base == ms.URL], c, tc.want)
		}
	}
}
