// Package fetch is bainode's artifact cache for air-gapped sites: it
// downloads files (cloud images, .debs, static Python builds) into a
// content-addressed cache, pins what it got in a lock file, and verifies the
// signed indexes (SHA256SUMS, apt InRelease) that say which bytes are right.
//
// It knows nothing of the site spec: callers hand it Artifacts.
package fetch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lablup/bainode/builder/atomicfile"
)

// Artifact is one file to fetch. URL is where it comes from (before mirror
// rewriting); SHA256 and Size pin its bytes once known. Version is the
// resolved upstream version (a .deb version, a release tag) and Kind a free
// label ("deb", "image", "python", "file") for callers.
type Artifact struct {
	Name    string `json:"name"`
	URL     string `json:"url"`
	Size    int64  `json:"size,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	Version string `json:"version,omitempty"`
	Kind    string `json:"kind,omitempty"`
}

// Pinned reports whether the artifact's bytes are fixed by a checksum.
func (a Artifact) Pinned() bool { return a.SHA256 != "" }

// label names the artifact in messages: its name, or its URL if unnamed.
func (a Artifact) label() string {
	if a.Name != "" {
		return a.Name
	}
	return a.URL
}

// validate checks the fields Download and the lock rely on.
func (a Artifact) validate() error {
	if a.URL == "" {
		return fmt.Errorf("artifact %q has no url", a.Name)
	}
	if a.SHA256 != "" && !isHexSum(a.SHA256) {
		return fmt.Errorf("artifact %s: sha256 %q is not 64 hex digits", a.label(), a.SHA256)
	}
	if a.Size < 0 {
		return fmt.Errorf("artifact %s: negative size %d", a.label(), a.Size)
	}
	return nil
}

// NameFromURL is the default artifact name: the last path element of the URL.
func NameFromURL(u string) string {
	u, _, _ = strings.Cut(u, "?")
	return path.Base(u)
}

func isHexSum(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// LockFileName is the conventional name of the lock file.
const LockFileName = "bainode.lock"

// lockFormat is bumped when the file's meaning changes.
const lockFormat = 1

// Lock pins every artifact of a site: URL, size, sha256 and resolved version.
// Fetching from a lock on any machine yields the same bytes.
type Lock struct {
	Artifacts []Artifact
}

type lockFile struct {
	Format    int        `json:"format"`
	Comment   string     `json:"comment,omitempty"`
	Artifacts []Artifact `json:"artifacts"`
}

// NewLock returns a lock of the given artifacts, sorted, exact repeats dropped.
func NewLock(arts []Artifact) *Lock {
	l := &Lock{Artifacts: append([]Artifact(nil), arts...)}
	l.sort()
	out := l.Artifacts[:0]
	for i, a := range l.Artifacts {
		if i == 0 || a != l.Artifacts[i-1] {
			out = append(out, a)
		}
	}
	l.Artifacts = out
	return l
}

func (l *Lock) sort() {
	sort.SliceStable(l.Artifacts, func(i, j int) bool {
		a, b := l.Artifacts[i], l.Artifacts[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.URL < b.URL
	})
}

// Find returns the locked artifact with the given URL.
func (l *Lock) Find(url string) (Artifact, bool) {
	if l == nil {
		return Artifact{}, false
	}
	for _, a := range l.Artifacts {
		if a.URL == url {
			return a, true
		}
	}
	return Artifact{}, false
}

// Pin fills in SHA256, Size and Version of unpinned artifacts from the lock,
// so a list of URLs fetched again gets the bytes of the first fetch.
func (l *Lock) Pin(arts []Artifact) []Artifact {
	out := make([]Artifact, len(arts))
	for i, a := range arts {
		if p, ok := l.Find(a.URL); ok && a.SHA256 == "" {
			a.SHA256, a.Size = p.SHA256, p.Size
			if a.Version == "" {
				a.Version = p.Version
			}
			if a.Kind == "" {
				a.Kind = p.Kind
			}
		}
		out[i] = a
	}
	return out
}

// Marshal renders the lock as stable, indented JSON: same artifacts, same bytes.
func (l *Lock) Marshal() ([]byte, error) {
	c := NewLock(l.Artifacts)
	if err := c.check(); err != nil {
		return nil, err
	}
	f := lockFile{Format: lockFormat, Comment: "written by bainode fetch; do not edit by hand", Artifacts: c.Artifacts}
	if f.Artifacts == nil {
		f.Artifacts = []Artifact{}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// check rejects what would make the lock ambiguous.
func (l *Lock) check() error {
	names := map[string]string{}
	for _, a := range l.Artifacts {
		if err := a.validate(); err != nil {
			return err
		}
		if a.Name == "" {
			return fmt.Errorf("lock: artifact %s has no name", a.URL)
		}
		if u, dup := names[a.Name]; dup {
			return fmt.Errorf("lock: two artifacts named %s (%s and %s)", a.Name, u, a.URL)
		}
		names[a.Name] = a.URL
	}
	return nil
}

// ParseLock reads a lock written by Marshal.
func ParseLock(b []byte) (*Lock, error) {
	var f lockFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if f.Format != lockFormat {
		return nil, fmt.Errorf("lock: format %d, this bainode reads format %d", f.Format, lockFormat)
	}
	l := NewLock(f.Artifacts)
	if err := l.check(); err != nil {
		return nil, err
	}
	return l, nil
}

// ReadLock reads a lock file.
func ReadLock(file string) (*Lock, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	l, err := ParseLock(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return l, nil
}

// WriteFile writes the lock atomically, so a crash never leaves half a lock.
func (l *Lock) WriteFile(file string) error {
	b, err := l.Marshal()
	if err != nil {
		return err
	}
	return writeFileAtomic(file, b, 0o644)
}

// writeFileAtomic writes data to file through a temp file created with
// perm and synced before the rename, so readers see the old or the new
// content, never a mix, and a crash leaves one of them.
func writeFileAtomic(file string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := atomicfile.Create(file, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}
