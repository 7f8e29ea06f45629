package fetch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// ProblemKind says what is wrong with a locked artifact in the cache.
type ProblemKind string

const (
	Missing  ProblemKind = "missing"  // no blob for the artifact
	Corrupt  ProblemKind = "corrupt"  // a blob whose size or sha256 is wrong
	Unpinned ProblemKind = "unpinned" // the lock has no sha256 for it
	Broken   ProblemKind = "unreadable"
)

// Problem is one artifact of a lock that the cache cannot provide.
type Problem struct {
	Artifact Artifact
	Kind     ProblemKind
	Path     string // the blob the cache would use
	Detail   string
}

func (p Problem) String() string {
	s := fmt.Sprintf("%s: %s", p.Artifact.label(), p.Kind)
	if p.Detail != "" {
		s += " (" + p.Detail + ")"
	}
	return s
}

// Check lists, without any network, every artifact of the lock that is
// missing from the cache or whose blob does not hash to its sha256. It hashes
// every blob: it is the integrity check to run before carrying a cache into
// an air-gapped site. An empty result means a fetch from this lock would
// download nothing. Its only write: a corrupt blob's state record is dropped,
// so the next Download notices and fetches it again.
func (c *Cache) Check(l *Lock) []Problem {
	var probs []Problem
	for _, a := range l.Artifacts {
		if a.SHA256 == "" {
			probs = append(probs, Problem{Artifact: a, Kind: Unpinned})
			continue
		}
		p := Problem{Artifact: a, Path: c.BlobPath(a.SHA256)}
		_, err := c.verifyBlob(a.SHA256, a.Size, false)
		switch {
		case err == nil:
			continue
		case errors.Is(err, fs.ErrNotExist):
			p.Kind = Missing
		case errors.Is(err, errCorrupt):
			p.Kind, p.Detail = Corrupt, strings.TrimPrefix(err.Error(), errCorrupt.Error()+": ")
			// Forget what we knew of it, so the next Download re-hashes and
			// replaces it even if its size and mtime look untouched.
			os.Remove(c.statePath(a.SHA256))
		default:
			p.Kind, p.Detail = Broken, err.Error()
		}
		probs = append(probs, p)
	}
	return probs
}

// Check is Cache.Check on the cache at root (DefaultCacheDir if empty).
func Check(root string, l *Lock) ([]Problem, error) {
	c, err := OpenCache(root)
	if err != nil {
		return nil, err
	}
	return c.Check(l), nil
}
