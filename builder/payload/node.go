package payload

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/lablup/bainode/builder/fetch"
	install "github.com/lablup/bainode/builder/plan"
	"github.com/lablup/bainode/builder/spec"
)

// Sources are where a node's artifacts are found.
type Sources struct {
	// Cache is bainode fetch's cache: the Python tarball is looked up there
	// by its asset name, images by ImageArchiveName, .debs by Lock.
	Cache *fetch.Cache
	// Lock pins the .debs bainode fetch got (artifacts of kind "deb" or
	// named *.deb); they come from Cache. May be nil.
	Lock *fetch.Lock
	// DebDirs hold .debs brought by hand; every *.deb is carried.
	DebDirs []string
	// ImageDirs hold docker-load tarballs (*.tar, *.tar.gz) brought by
	// hand; they are matched to images.pull by the tags they carry.
	ImageDirs []string
}

// PythonAsset is the python-build-standalone file name of a node's Python,
// as the node's provisioning script expects it (render's PYTHON_ASSET).
func PythonAsset(p spec.Python) string { return install.PythonAsset(p) }

// ForNodes collects what the nodes' plans take from a payload: the .debs
// (for Docker, the GPU driver and toolkit, NFS), their Python tarball and
// their images. Items shared by nodes are carried once. Every missing
// artifact is named in the error.
func ForNodes(nodes []*spec.Node, src Sources) ([]Item, error) {
	var ps []*install.Plan
	for _, n := range nodes {
		p, err := install.For(n, install.Options{})
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ForPlans(ps, src)
}

// ForPlans collects what the plans' sources need carried (see ForNodes).
func ForPlans(ps []*install.Plan, src Sources) ([]Item, error) {
	var (
		items []Item
		errs  []error
		byDst = map[string]Item{}
	)
	add := func(it Item) {
		key := kindDir[it.Kind] + "/" + it.Name
		if old, ok := byDst[key]; ok {
			if old.SHA256 != it.SHA256 || old.Path != it.Path {
				errs = append(errs, fmt.Errorf("%s: two different files", key))
			}
			return
		}
		byDst[key] = it
		items = append(items, it)
	}

	var debUsers, want []string // "node: field"; image references
	for _, p := range ps {
		for _, s := range p.Sources {
			switch s.Kind {
			case install.KindDeb:
				debUsers = append(debUsers, p.Node+": "+s.Field)
			case install.KindPython:
				it, err := pythonItem(p.Node, s, src.Cache)
				if err != nil {
					errs = append(errs, err)
				} else {
					add(it)
				}
			case install.KindImage:
				if !slices.Contains(want, s.Name) {
					want = append(want, s.Name)
				}
			case install.KindCloudImage:
				// What the node boots from, not what it installs.
			default:
				errs = append(errs, fmt.Errorf("%s: %s: payload cannot carry a %q", p.Node, s.Field, s.Kind))
			}
		}
	}

	debs, err := debItems(src)
	if err != nil {
		errs = append(errs, err)
	}
	if len(debUsers) > 0 && len(debs) == 0 && err == nil {
		errs = append(errs, fmt.Errorf("the nodes install packages (%s) but there are no .debs: give --debs DIR or pin them with bainode fetch",
			strings.Join(debUsers, ", ")))
	}
	for _, it := range debs {
		add(it)
	}

	imgs, err := imageItems(want, src)
	if err != nil {
		errs = append(errs, err)
	}
	for _, it := range imgs {
		add(it)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return items, nil
}

func pythonItem(host string, s install.Source, c *fetch.Cache) (Item, error) {
	if c == nil {
		return Item{}, fmt.Errorf("%s: %s: no cache to take %s from", host, s.Field, s.Name)
	}
	a, ok := c.Lookup(s.Name)
	if !ok {
		return Item{}, fmt.Errorf("%s: %s: %s is not in the cache %s; run bainode fetch for it", host, s.Field, s.Name, c.Root())
	}
	if s.SHA256 != "" && s.SHA256 != a.SHA256 {
		return Item{}, fmt.Errorf("%s: %s: the cache's %s has sha256 %s, but python.sha256 pins %s", host, s.Field, s.Name, a.SHA256, s.SHA256)
	}
	return Item{Kind: KindPython, Name: s.Name, SHA256: a.SHA256, Size: a.Size}, nil
}

func debItems(src Sources) ([]Item, error) {
	var items []Item
	if src.Lock != nil {
		for _, a := range src.Lock.Artifacts {
			if a.Kind != install.KindDeb && !strings.HasSuffix(a.Name, ".deb") {
				continue
			}
			if src.Cache == nil {
				return nil, fmt.Errorf("%s: the lock pins it but there is no cache", a.Name)
			}
			if !a.Pinned() {
				return nil, fmt.Errorf("%s: the lock has no sha256 for it; run bainode fetch", a.Name)
			}
			items = append(items, Item{Kind: KindDeb, Name: a.Name, SHA256: a.SHA256, Size: a.Size})
		}
	}
	for _, d := range src.DebDirs {
		debs, err := filepath.Glob(filepath.Join(d, "*.deb"))
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(d); err != nil {
			return nil, err
		}
		sort.Strings(debs)
		for _, p := range debs {
			items = append(items, Item{Kind: KindDeb, Name: filepath.Base(p), Path: p})
		}
	}
	return items, nil
}

func imageItems(want []string, src Sources) ([]Item, error) {
	if len(want) == 0 {
		return nil, nil
	}
	// Tarballs brought by hand, by the tags they carry.
	type tarball struct {
		path string
		refs []string
	}
	var tars []tarball
	for _, d := range src.ImageDirs {
		if _, err := os.Stat(d); err != nil {
			return nil, err
		}
		var paths []string
		for _, pat := range []string{"*.tar", "*.tar.gz"} {
			m, _ := filepath.Glob(filepath.Join(d, pat))
			paths = append(paths, m...)
		}
		sort.Strings(paths)
		for _, p := range paths {
			refs, err := ImageRefs(p)
			if err != nil {
				return nil, err
			}
			tars = append(tars, tarball{p, refs})
		}
	}
	var (
		items   []Item
		missing []string
		used    = map[string]bool{}
	)
	for _, ref := range want {
		found := false
		for _, tb := range tars {
			if slices.ContainsFunc(tb.refs, func(tag string) bool { return sameImage(tag, ref) }) {
				found = true
				if !used[tb.path] {
					used[tb.path] = true
					items = append(items, Item{Kind: KindImage, Name: filepath.Base(tb.path), Path: tb.path, Refs: tb.refs})
				}
				break
			}
		}
		if found {
			continue
		}
		name := ImageArchiveName(ref)
		if src.Cache != nil {
			if a, ok := src.Cache.Lookup(name); ok {
				items = append(items, Item{Kind: KindImage, Name: name, SHA256: a.SHA256, Size: a.Size})
				continue
			}
		}
		missing = append(missing, fmt.Sprintf("%s (no tarball tagged so in --images, no %s in the cache)", ref, name))
	}
	if len(missing) > 0 {
		return items, fmt.Errorf("images not found: %s", strings.Join(missing, "; "))
	}
	return items, nil
}
