package serve_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"testing"
)

// TestGzip: clients that accept gzip (cloud-init's python-requests sends
// "gzip, deflate") get a gzipped copy of the same bytes under its own
// ETag; everyone else, and anyone refusing gzip, gets the plain bytes.
func TestGzip(t *testing.T) {
	f := newFixture(t, nil)
	// No automatic Accept-Encoding and no transparent decoding.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(client.CloseIdleConnections)
	get := func(method, path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, f.srv.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	const path = "/nocloud/gpu1/user-data"
	want := f.want("gpu1", "user-data")

	plain, body := get("GET", path)
	plainTag := plain.Header.Get("ETag")
	if plain.StatusCode != 200 || string(body) != want || plain.Header.Get("Content-Encoding") != "" {
		t.Fatalf("no Accept-Encoding: got %d, encoding %q, body %q", plain.StatusCode, plain.Header.Get("Content-Encoding"), body)
	}
	if plain.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("plain: Vary %q, want Accept-Encoding", plain.Header.Get("Vary"))
	}

	zipped, body := get("GET", path, "Accept-Encoding", "gzip, deflate")
	zipTag := zipped.Header.Get("ETag")
	if zipped.StatusCode != 200 || zipped.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("gzip, deflate: got %d, encoding %q", zipped.StatusCode, zipped.Header.Get("Content-Encoding"))
	}
	if got := gunzip(t, body); got != want {
		t.Errorf("gzip copy decodes to %q, want %q", got, want)
	}
	if zipped.Header.Get("Content-Length") != strconv.Itoa(len(body)) || len(body) >= len(want) {
		t.Errorf("gzip copy: Content-Length %s, %d bytes for %d plain", zipped.Header.Get("Content-Length"), len(body), len(want))
	}
	if zipped.Header.Get("Vary") != "Accept-Encoding" || zipped.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("gzip copy: Vary %q, Content-Type %q", zipped.Header.Get("Vary"), zipped.Header.Get("Content-Type"))
	}
	if zipTag == "" || zipTag == plainTag {
		t.Errorf("ETags: plain %s, gzip %s; want two different tags", plainTag, zipTag)
	}

	// Each tag revalidates its own copy.
	for _, c := range []struct {
		tag, accept string
		code        int
	}{
		{zipTag, "gzip", 304}, {plainTag, "", 304}, {plainTag, "gzip", 200}, {zipTag, "", 200},
	} {
		resp, body := get("GET", path, "If-None-Match", c.tag, "Accept-Encoding", c.accept)
		if resp.StatusCode != c.code || c.code == 304 && (len(body) > 0 || resp.Header.Get("ETag") != c.tag) {
			t.Errorf("If-None-Match %s, Accept-Encoding %q: got %d, ETag %s, %d bytes; want %d", c.tag, c.accept, resp.StatusCode, resp.Header.Get("ETag"), len(body), c.code)
		}
	}

	// What counts as accepting gzip.
	for accept, gz := range map[string]bool{
		"gzip": true, "GZIP;q=0.5": true, "deflate, gzip;q=1.0": true, "x-gzip": true, "br, gzip ; q=0.1": true,
		"": false, "identity": false, "deflate": false, "gzip;q=0": false, "gzip; q=0.000": false, "*": false, "gzipx": false,
	} {
		resp, body := get("GET", path, "Accept-Encoding", accept)
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != gz {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", accept, got, gz)
		} else if !gz && string(body) != want {
			t.Errorf("Accept-Encoding %q: plain body differs", accept)
		}
	}

	// HEAD: the headers GET would send, without a body.
	head, body := get("HEAD", path)
	if head.StatusCode != 200 || len(body) > 0 || head.Header.Get("ETag") != plainTag ||
		head.Header.Get("Content-Length") != strconv.Itoa(len(want)) || head.Header.Get("Content-Encoding") != "" {
		t.Errorf("HEAD: got %d, ETag %s, Content-Length %s, encoding %q", head.StatusCode, head.Header.Get("ETag"),
			head.Header.Get("Content-Length"), head.Header.Get("Content-Encoding"))
	}
	head, _ = get("HEAD", path, "Accept-Encoding", "gzip")
	if head.Header.Get("ETag") != zipTag || head.Header.Get("Content-Length") != zipped.Header.Get("Content-Length") {
		t.Errorf("HEAD with gzip: ETag %s, Content-Length %s", head.Header.Get("ETag"), head.Header.Get("Content-Length"))
	}

	// An empty document is never worth compressing.
	resp, body := get("GET", "/nocloud/gpu1/vendor-data", "Accept-Encoding", "gzip")
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Content-Length") != "0" {
		t.Errorf("empty vendor-data: got %d, %d bytes, encoding %q", resp.StatusCode, len(body), resp.Header.Get("Content-Encoding"))
	}

	// Ranges apply to the copy that is sent.
	resp, body = get("GET", path, "Range", "bytes=0-9")
	if resp.StatusCode != 206 || string(body) != want[:10] {
		t.Errorf("Range: got %d %q, want 206 %q", resp.StatusCode, body, want[:10])
	}
}

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
