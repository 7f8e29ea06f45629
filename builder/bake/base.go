package bake

import (
	"fmt"
	"os"

	"github.com/lablup/bainode/builder/fetch"
	"github.com/lablup/bainode/builder/plan"
	"github.com/lablup/bainode/builder/spec"
)

// CachedBase is a vendor cloud image found in the fetch cache.
type CachedBase struct {
	Name   string // the cache name, e.g. jammy-server-cloudimg-amd64.img
	URL    string // where `bainode fetch` downloaded it from
	Path   string // its blob in the cache
	SHA256 string // as fetch verified it against the signed SHA256SUMS
}

// MissingBaseError says that the cache lacks the node's cloud image, and
// what to run.
type MissingBaseError struct {
	Target, Name, Cache string
	Fetch               string // the command that fetches it
}

func (e *MissingBaseError) Error() string {
	return fmt.Sprintf("base: the %s cloud image %s is not in the fetch cache %s; fetch it (its SHA256SUMS signature is checked) with\n  %s\nor give a base disk with --base",
		e.Target, e.Name, e.Cache, e.Fetch)
}

// CloudImage finds the vendor cloud image of n's target (Ubuntu only: the
// plan names it) in the fetch cache, where `bainode fetch --cloud-image`
// put it once its checksum, from Ubuntu's signed SHA256SUMS, matched.
// fetchCmd is the command the error suggests when it is missing. The
// bake hashes the base anyway: Options.BaseSHA256 makes it compare.
func CloudImage(cache *fetch.Cache, n *spec.Node, arch, fetchCmd string) (CachedBase, error) {
	p, err := plan.For(n, plan.Options{Arch: arch, CloudImage: true})
	if err != nil {
		return CachedBase{}, err
	}
	var f *plan.File
	for _, st := range p.Steps {
		for i := range st.Files {
			if st.Files[i].Kind == plan.KindCloudImage {
				f = &st.Files[i]
			}
		}
	}
	if f == nil {
		return CachedBase{}, fmt.Errorf("base: target %s has no vendor cloud image in the fetch cache (Ubuntu targets only); give a base disk with --base", n.Target)
	}
	missing := &MissingBaseError{Target: n.Target, Name: f.Name, Cache: cache.Root(), Fetch: fetchCmd}
	a, ok := cache.Lookup(f.Name)
	if !ok || a.SHA256 == "" {
		return CachedBase{}, missing
	}
	if a.Kind != plan.KindCloudImage {
		return CachedBase{}, fmt.Errorf("base: %s in the fetch cache %s is a %q artifact, not a cloud image", f.Name, cache.Root(), a.Kind)
	}
	path := cache.BlobPath(a.SHA256)
	fi, err := os.Stat(path)
	if err != nil {
		return CachedBase{}, missing
	}
	if a.Size > 0 && fi.Size() != a.Size {
		return CachedBase{}, fmt.Errorf("base: %s in the fetch cache (%s) has %d bytes, fetch recorded %d: check the cache with 'bainode fetch --check'", f.Name, path, fi.Size(), a.Size)
	}
	return CachedBase{Name: f.Name, URL: a.URL, Path: path, SHA256: a.SHA256}, nil
}
