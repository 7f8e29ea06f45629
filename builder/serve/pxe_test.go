package serve_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/pxe"
	"github.com/lablup/bainode/builder/serve"
)

// pxeTree writes a small tree with pxe.Tree.Write, as 'bainode pxe' does.
func pxeTree(t *testing.T) (dir, id string) {
	dir = t.TempDir()
	var tr pxe.Tree
	for p, data := range map[string]string{
		"grub/grub.cfg":                     "set timeout=1\n",
		"autoinstall/live-server.iso":       strings.Repeat("0123456789", 1000),
		"autoinstall/seed/gpu2/user-data":   "#cloud-config\n",
		"ipxe/01-52-54-00-aa-bb-03.ipxe":    "#!ipxe\n",
		"pxelinux.cfg/01-52-54-00-aa-bb-03": "DEFAULT x\n",
	} {
		if err := tr.Add(p, pxe.File{Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
	}
	id, err := tr.Seal("test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Write(dir, id); err != nil {
		t.Fatal(err)
	}
	// A link out of the tree must not be followed.
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, id, "grub", "passwd")); err != nil {
		t.Fatal(err)
	}
	return dir, id
}

func TestPXEServe(t *testing.T) {
	dir, id := pxeTree(t)
	f := newFixture(t, func(c *serve.Config) { c.PXEDir = dir })
	client := *f.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(path string, hdr ...string) *http.Response {
		req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode/100 == 3 && resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s: redirect %d (UEFI HTTP boot does not follow it)", path, resp.StatusCode)
		}
		return resp
	}

	resp := get("/pxe/" + id + "/grub/grub.cfg")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "set timeout=1\n" {
		t.Fatalf("grub.cfg: %d %q", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("Cache-Control %q, want immutable", cc)
	}
	etag := resp.Header.Get("ETag")
	if r := get("/pxe/"+id+"/grub/grub.cfg", "If-None-Match", etag); r.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", r.StatusCode)
	}

	// casper and resumed downloads read the ISO in ranges.
	r := get("/pxe/"+id+"/autoinstall/live-server.iso", "Range", "bytes=10-19")
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusPartialContent || string(b) != "0123456789" {
		t.Errorf("range: %d %q", r.StatusCode, b)
	}

	for _, p := range []string{
		"/pxe/" + id + "/grub",           // a directory: no listing, no redirect to grub/
		"/pxe/" + id + "/grub/",          //
		"/pxe/" + id + "//grub/grub.cfg", // smee's 301 came from a double slash
		"/pxe/" + id + "/grub/passwd",    // symlink out of the tree
		"/pxe/" + pxe.Current + "/grub/grub.cfg",
		"/pxe/" + strings.Repeat("0", len(id)) + "/grub/grub.cfg",
		"/pxe/" + id + "/.hidden",
	} {
		if r := get(p); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, r.StatusCode)
		}
	}
	if code, _ := f.raw("/pxe/" + id + "/../" + id + "/grub/grub.cfg"); code != http.StatusNotFound {
		t.Errorf("dot-dot: %d, want 404", code)
	}
}

// TestPXESeedBindIP: a tree's seed holds the node's secrets, so bind-ip
// mode guards it as it guards /nocloud (gpu2 is registered at 10.9.9.9).
func TestPXESeedBindIP(t *testing.T) {
	dir, id := pxeTree(t)
	f := newFixture(t, func(c *serve.Config) { c.PXEDir = dir; c.BindIP = true })
	if code, _ := f.do("GET", "/pxe/"+id+"/autoinstall/seed/gpu2/user-data", "", ""); code != http.StatusNotFound {
		t.Errorf("seed from the wrong IP: %d, want 404", code)
	}
	if code, _ := f.do("GET", "/pxe/"+id+"/grub/grub.cfg", "", ""); code != http.StatusOK {
		t.Errorf("grub.cfg under bind-ip: %d, want 200", code)
	}
}
