package serve

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"time"
)

// pxe serves GET /pxe/{id}/{path...}: the netboot trees 'bainode pxe'
// writes under Config.PXEDir, one directory per content address. A tree
// never changes once written, so its files are cached forever; nothing here
// redirects, because UEFI HTTP Boot firmware does not follow redirects.
func (s *server) pxe(w http.ResponseWriter, r *http.Request) {
	id, name := r.PathValue("id"), r.PathValue("path")
	if s.cfg.PXEDir == "" || !pxeID(id) || !pxePath(name) {
		notFound(w)
		return
	}
	// A seed holds the node's secrets: bind-ip mode applies as on /nocloud.
	if rest, ok := strings.CutPrefix(name, "autoinstall/seed/"); ok {
		host, _, _ := strings.Cut(rest, "/")
		if s.cfg.BindIP {
			if _, ok := s.seed(w, r, host); !ok {
				return
			}
		}
	}
	root, err := os.OpenRoot(s.cfg.PXEDir) // no symlink leads out of it
	if err != nil {
		s.log.Error("pxe dir", "err", err)
		notFound(w)
		return
	}
	defer root.Close()
	f, err := root.Open(id + "/" + name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("pxe", "path", name, "err", err)
		}
		notFound(w)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		notFound(w) // a directory gets no listing and no redirect to a slash
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", `"`+id+"/"+name+`"`)
	switch path.Ext(name) {
	case ".ipxe", ".cfg":
		h.Set("Content-Type", "text/plain; charset=utf-8")
	case "":
		if strings.HasPrefix(name, "pxelinux.cfg/") || strings.Contains(name, "/seed/") {
			h.Set("Content-Type", "text/plain; charset=utf-8")
		} else {
			h.Set("Content-Type", "application/octet-stream")
		}
	default:
		h.Set("Content-Type", "application/octet-stream")
	}
	// ServeContent answers Range (casper's ISO, resumed downloads) and
	// If-None-Match; the modification time is not part of the address.
	http.ServeContent(streaming(w), r, "", time.Time{}, f)
}

// pxeID accepts the content addresses 'bainode pxe' makes: lowercase hex.
func pxeID(id string) bool {
	if len(id) < 16 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// pxePath accepts a clean relative path without hidden segments.
func pxePath(p string) bool {
	if p == "" || len(p) > 512 || strings.HasSuffix(p, "/") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || strings.HasPrefix(seg, ".") {
			return false
		}
	}
	return true
}
