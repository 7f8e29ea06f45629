package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/lablup/bainode/builder/inventory"
)

// errUnknown covers every key that must get a plain 404.
var errUnknown = errors.New("unknown node")

// errRender marks renderer failures, which are the operator's to fix.
var errRender = errors.New("render failed")

// nocloud serves /nocloud/{key}/{file}: the NoCloud seed directory that
// ds=nocloud-net;s=<base>/nocloud/<key>/ points at.
func (s *server) nocloud(w http.ResponseWriter, r *http.Request) {
	i, ok := seedFiles[r.PathValue("file")]
	if !ok {
		notFound(w)
		return
	}
	e, ok := s.seed(w, r, r.PathValue("key"))
	if !ok {
		return
	}
	e.files[i].variantFor(r).serve(w, r)
}

// ipxe serves a boot script whose seed URL carries the MAC that booted.
func (s *server) ipxe(w http.ResponseWriter, r *http.Request) {
	mac, err := inventory.NormalizeMAC(r.PathValue("mac"))
	if err != nil || s.cfg.Kernel == "" && s.deploy == nil {
		notFound(w)
		return
	}
	e, ok := s.seed(w, r, mac)
	if !ok || s.deployIPXE(w, r, e, mac) {
		return
	}
	if s.cfg.Kernel == "" {
		notFound(w)
		return
	}
	// The dash form keeps colons out of the kernel command line; the seed
	// route accepts any notation. The trailing slash matters: cloud-init
	// before 23.1 appends file names to s= without a separator.
	seedURL := e.base + "/nocloud/" + strings.ReplaceAll(mac, ":", "-") + "/"
	var b strings.Builder
	b.WriteString("#!ipxe\n")
	fmt.Fprintf(&b, "kernel %s initrd=initrd", s.cfg.Kernel)
	if s.cfg.KernelArgs != "" {
		b.WriteString(" " + s.cfg.KernelArgs)
	}
	fmt.Fprintf(&b, " ds=nocloud-net;s=%s\n", seedURL)
	if s.cfg.Initrd != "" {
		fmt.Fprintf(&b, "initrd --name initrd %s\n", s.cfg.Initrd)
	}
	b.WriteString("boot\n")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(b.String()))
}

// seed finds the rendered seed for key and applies bind-ip mode; on
// failure it has already answered.
func (s *server) seed(w http.ResponseWriter, r *http.Request, key string) (*entry, bool) {
	e, err := s.lookup(r, key)
	switch {
	case err == nil:
		if s.allowed(r, e.node.IP) {
			return e, true
		}
		s.log.Warn("seed refused by bind-ip", "node", e.node.Hostname, "remote", r.RemoteAddr)
		notFound(w)
	case errors.Is(err, errUnknown):
		notFound(w)
	case errors.Is(err, errRender):
		s.log.Error("render", "key", key, "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
	default:
		s.storeError(w, r, err)
	}
	return nil, false
}

// machineKey reads a path key as a MAC in any notation and as a hostname;
// either may be empty. aabbccddeeff is both.
func machineKey(raw string) (mac, host string) {
	if m, err := inventory.NormalizeMAC(raw); err == nil {
		mac = m
	}
	if h := strings.ToLower(raw); inventory.CheckHostname(h) == nil {
		host = h
	}
	return mac, host
}

func (s *server) lookup(r *http.Request, raw string) (*entry, error) {
	mac, host := machineKey(raw)
	if mac == "" && host == "" {
		return nil, errUnknown
	}
	base, ok := s.baseURL(r)
	if !ok {
		return nil, errUnknown
	}
	at, stale, err := s.cache.revision(r.Context(), s.store)
	if err != nil {
		return nil, err
	}
	// A MAC-shaped key is cached under its MAC even when it resolved as a
	// hostname (see put's aliases), so the MAC alone decides.
	k := mac
	if k == "" {
		k = host
	}
	if e := s.cache.get(k, base); e != nil {
		return e, nil
	}
	if stale {
		return nil, errors.New("inventory unreachable and no cached seed")
	}
	return s.cache.fill(mac+" "+host+" "+base, func() (*entry, error) {
		e, err := s.render(r.Context(), mac, host, base)
		if err == nil {
			s.cache.put(e, at, k)
		}
		return e, err
	})
}

// render loads the node a key names, MAC first, and renders it.
func (s *server) render(ctx context.Context, mac, host, base string) (*entry, error) {
	err := inventory.ErrNotFound
	var n inventory.Node
	if mac != "" {
		n, err = s.store.NodeByMAC(ctx, mac)
	}
	if errors.Is(err, inventory.ErrNotFound) && host != "" {
		n, err = s.store.Node(ctx, host)
	}
	if errors.Is(err, inventory.ErrNotFound) {
		return nil, errUnknown
	} else if err != nil {
		return nil, err
	}
	files, err := s.renderNode(ctx, nil, n, base)
	if err != nil {
		return nil, err
	}
	return newEntry(n, base, files), nil
}

// renderNode renders n against site, or against the stored site if nil.
// A fleet without a site has nothing to serve yet, so that is errUnknown.
func (s *server) renderNode(ctx context.Context, site []byte, n inventory.Node, base string) (Files, error) {
	if site == nil {
		v, err := s.store.Site(ctx)
		if errors.Is(err, inventory.ErrNotFound) {
			s.log.Warn("seed requested but no site is stored", "node", n.Hostname)
			return Files{}, errUnknown
		} else if err != nil {
			return Files{}, err
		}
		site = v.YAML
	}
	key, err := s.nodeSecret(ctx)
	if err != nil {
		return Files{}, err
	}
	urls := s.urls(base, n.Hostname, inventory.NodeToken(key, n.Hostname, n.TokenGen))
	f, err := s.cfg.Renderer.Render(site, n, urls)
	if err != nil {
		return Files{}, &renderError{host: n.Hostname, err: err}
	}
	return f, nil
}

// renderError is a renderer's failure for one node; it is errRender.
type renderError struct {
	host string
	err  error
}

func (e *renderError) Error() string        { return fmt.Sprintf("%v: node %s: %v", errRender, e.host, e.err) }
func (e *renderError) Unwrap() error        { return e.err }
func (e *renderError) Is(target error) bool { return target == errRender }
