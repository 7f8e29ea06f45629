package artifacts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/lablup/bainode/builder/fetch"
)

// FromLock turns a lock back into requests: files by URL and sha256, images
// by their locked digest (and tarball sha256).
func FromLock(l *fetch.Lock) []Request {
	var out []Request
	for _, a := range l.Artifacts {
		r := Request{Artifact: a, Field: "lock " + a.Name}
		if ref, ok := strings.CutPrefix(a.URL, fetch.ImageURLScheme); ok {
			r.Image = &Image{Ref: ref}
		}
		out = append(out, r)
	}
	return out
}

// Fetch makes every request present in the cache: files in parallel through
// fetch.Download (pinned, verified, resumed), then images through
// fetch.PullImage (o.Jobs at a time). It returns the lock entries, one per
// request in order, pinned (sha256, size; an image's digest as Version);
// a request that failed is returned as given and its error, naming its
// nodes and setting, is among the joined errors.
func Fetch(ctx context.Context, c *fetch.Cache, reqs []Request, o fetch.Options) ([]fetch.Artifact, error) {
	out := make([]fetch.Artifact, len(reqs))
	var files []fetch.Artifact
	var fileIdx, imgIdx []int
	for i, r := range reqs {
		out[i] = r.Artifact
		if r.Image != nil {
			imgIdx = append(imgIdx, i)
		} else {
			files = append(files, r.Artifact)
			fileIdx = append(fileIdx, i)
		}
	}
	var errs []error
	if len(files) > 0 {
		res, err := fetch.Download(ctx, c, files, o)
		if res == nil {
			return out, err
		}
		for k, i := range fileIdx {
			out[i] = res.Artifacts[k]
		}
		errs = append(errs, attribute(err, reqs, fileIdx)...)
	}

	jobs := o.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	imgErrs := make([]error, len(reqs))
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for _, i := range imgIdx {
		r := reqs[i]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a, err := fetch.PullImage(ctx, c, r.Image.Ref, r.Image.Platform, fetch.Keychain(r.Image.Credentials...),
				fetch.ImageOptions{Name: r.Artifact.Name, Digest: r.Artifact.Version, SHA256: r.Artifact.SHA256, Options: o})
			if err != nil {
				imgErrs[i] = fmt.Errorf("%s: %w", r.Where(), err)
				return
			}
			out[i] = a
		}()
	}
	wg.Wait()
	for _, e := range imgErrs {
		if e != nil {
			errs = append(errs, e)
		}
	}
	return out, errors.Join(errs...)
}

// attribute prefixes each of Download's errors with the nodes and setting
// of its request, found by the artifact's index (idx maps Download's
// indexes to reqs').
func attribute(err error, reqs []Request, idx []int) []error {
	if err == nil {
		return nil
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		var ae *fetch.ArtifactError
		if errors.As(e, &ae) && ae.Index >= 0 && ae.Index < len(idx) {
			e = fmt.Errorf("%s: %w", reqs[idx[ae.Index]].Where(), e)
		}
		out = append(out, e)
	}
	return out
}
