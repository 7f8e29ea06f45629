package serve

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// seedFile is one rendered document, ready to serve as is or, to clients
// that accept it, gzipped. cloud-init fetches with python-requests, which
// asks for gzip and decodes it, and user-data with the site's hosts block
// is tens of kilobytes.
type seedFile struct {
	plain    variant
	gzipOnce sync.Once
	gzip     *variant // nil if compressing does not make it smaller
}

// variant is one encoding of a document with its header values built
// once, so serving a cached seed formats nothing.
type variant struct {
	body     []byte
	etag     []string
	length   []string
	encoding []string // Content-Encoding; nil for the plain bytes
}

func newVariant(body []byte, encoding string) variant {
	sum := sha256.Sum256(body)
	v := variant{body: body, length: []string{strconv.Itoa(len(body))}}
	if encoding == "" {
		v.etag = []string{`"` + hex.EncodeToString(sum[:16]) + `"`}
	} else {
		// A tag of its own: the bytes differ from the plain ones.
		v.etag = []string{`"` + hex.EncodeToString(sum[:16]) + "-" + encoding + `"`}
		v.encoding = []string{encoding}
	}
	return v
}

// gzipped compresses f on first use; renders of nodes that nobody asks
// for with gzip (bainode's own tools, curl) never pay for it.
func (f *seedFile) gzipped() *variant {
	f.gzipOnce.Do(func() {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression) // once per render
		zw.Write(f.plain.body)
		if zw.Close() == nil && b.Len() < len(f.plain.body) {
			v := newVariant(b.Bytes(), "gzip")
			f.gzip = &v
		}
	})
	return f.gzip
}

// variantFor picks the encoding to send for r.
func (f *seedFile) variantFor(r *http.Request) *variant {
	if acceptsGzip(r.Header["Accept-Encoding"]) {
		if v := f.gzipped(); v != nil {
			return v
		}
	}
	return &f.plain
}

// acceptsGzip reads Accept-Encoding values such as "gzip, deflate" or
// "gzip;q=0.5, identity"; gzip;q=0 refuses it.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			name, params, _ := strings.Cut(item, ";")
			if name = strings.TrimSpace(name); !strings.EqualFold(name, "gzip") && !strings.EqualFold(name, "x-gzip") {
				continue
			}
			q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
			if !ok {
				return true
			}
			w, err := strconv.ParseFloat(strings.TrimSpace(q), 64)
			return err == nil && w > 0
		}
	}
	return false
}

// Header values shared by every seed response; net/http only reads them.
var (
	textPlain          = []string{"text/plain; charset=utf-8"}
	noSniff            = []string{"nosniff"}
	noCache            = []string{"no-cache"} // revalidate with the ETag every time
	varyEncoding       = []string{"Accept-Encoding"}
	conditionalHeaders = []string{"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range"}
)

// serve writes v. Plain GETs and HEADs, which are what machines send, are
// written directly; conditional and range requests go to
// http.ServeContent.
func (v *variant) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = textPlain
	h["X-Content-Type-Options"] = noSniff
	h["Cache-Control"] = noCache
	h["Vary"] = varyEncoding
	h["Etag"] = v.etag
	if v.encoding != nil {
		h["Content-Encoding"] = v.encoding
	}
	for _, k := range conditionalHeaders {
		if _, ok := r.Header[k]; ok {
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(v.body))
			return
		}
	}
	h["Content-Length"] = v.length
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(v.body)
	}
}
