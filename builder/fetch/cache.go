package fetch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
)

// Cache is a content-addressed store of artifacts:
//
//	<root>/sha256/<hex>        the blobs, read-only
//	<root>/state/<hex>.json    size, mtime and sum of a blob when last hashed
//	<root>/names/<name>.json   the name index: which artifact a name is
//	<root>/partial/            downloads in progress, kept so they resume
//
// Blobs enter only through a rename of a fully verified file.
type Cache struct {
	root string
}

// DefaultCacheDir is os.UserCacheDir()/bainode/cache.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache: no user cache directory: %w", err)
	}
	return filepath.Join(d, "bainode", "cache"), nil
}

// OpenCache opens (creating it if needed) the cache at root, or at
// DefaultCacheDir when root is empty.
func OpenCache(root string) (*Cache, error) {
	if root == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		root = d
	}
	for _, d := range []string{"sha256", "state", "names", "partial"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	return &Cache{root: root}, nil
}

// Root is the cache directory.
func (c *Cache) Root() string { return c.root }

// BlobPath is where the blob with this sha256 lives (it may not exist).
func (c *Cache) BlobPath(sum string) string { return filepath.Join(c.root, "sha256", sum) }

func (c *Cache) statePath(sum string) string {
	return filepath.Join(c.root, "state", sum+".json")
}

func (c *Cache) namePath(name string) string {
	// PathEscape keeps "/" out of the file name; .deb names keep ":" and "~".
	return filepath.Join(c.root, "names", url.PathEscape(name)+".json")
}

// partialPath is where a download in progress is kept between runs. Pinned
// artifacts are keyed by sum; unpinned ones by their URL.
func (c *Cache) partialPath(a Artifact) string {
	key := a.SHA256
	if key == "" {
		h := sha256.Sum256([]byte(a.URL))
		key = "url-" + hex.EncodeToString(h[:16])
	}
	return filepath.Join(c.root, "partial", key)
}

// Path returns the blob of the artifact indexed under name.
func (c *Cache) Path(name string) (string, bool) {
	a, ok := c.Lookup(name)
	if !ok {
		return "", false
	}
	p := c.BlobPath(a.SHA256)
	if _, err := os.Stat(p); err != nil {
		return "", false
	}
	return p, true
}

// Lookup returns the artifact last stored under name.
func (c *Cache) Lookup(name string) (Artifact, bool) {
	b, err := os.ReadFile(c.namePath(name))
	if err != nil {
		return Artifact{}, false
	}
	var a Artifact
	if json.Unmarshal(b, &a) != nil || !isHexSum(a.SHA256) {
		return Artifact{}, false
	}
	return a, true
}

func (c *Cache) index(a Artifact) error {
	if old, ok := c.Lookup(a.Name); ok && old == a {
		return nil // a warm run rewrites nothing
	}
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(c.namePath(a.Name), append(b, '\n'), 0o644)
}

// blobState is what we knew of a blob the last time we hashed it. If the
// file's size and mtime still agree, hashing it again would tell us nothing.
type blobState struct {
	Size   int64  `json:"size"`
	MTime  int64  `json:"mtime_ns"`
	SHA256 string `json:"sha256"`
}

func (c *Cache) recordState(sum string, fi fs.FileInfo) error {
	b, err := json.Marshal(blobState{Size: fi.Size(), MTime: fi.ModTime().UnixNano(), SHA256: sum})
	if err != nil {
		return err
	}
	return writeFileAtomic(c.statePath(sum), append(b, '\n'), 0o644)
}

// blobHashes counts full re-hashes of cached blobs (tests assert a warm
// cache does none).
var blobHashes atomic.Int64

// errCorrupt marks a blob whose bytes are not what its name says.
var errCorrupt = errors.New("corrupt")

// verifyBlob checks the blob of sum (and size, when known). With quick set
// it trusts the state record when size and mtime agree; otherwise, or when
// they do not, it hashes the file. It returns fs.ErrNotExist for a missing
// blob and an error wrapping errCorrupt for a wrong one.
func (c *Cache) verifyBlob(sum string, size int64, quick bool) (hashed bool, err error) {
	p := c.BlobPath(sum)
	fi, err := os.Stat(p)
	if err != nil {
		return false, err
	}
	if size > 0 && fi.Size() != size {
		return false, fmt.Errorf("%w: %d bytes, want %d", errCorrupt, fi.Size(), size)
	}
	if quick {
		var st blobState
		if b, err := os.ReadFile(c.statePath(sum)); err == nil && json.Unmarshal(b, &st) == nil &&
			st.SHA256 == sum && st.Size == fi.Size() && st.MTime == fi.ModTime().UnixNano() {
			return false, nil
		}
	}
	blobHashes.Add(1)
	got, err := fileSHA256(p)
	if err != nil {
		return true, err
	}
	if got != sum {
		return true, fmt.Errorf("%w: sha256 %s, want %s", errCorrupt, got, sum)
	}
	return true, c.recordState(sum, fi)
}

// put moves a verified file into the cache as the blob of sum and indexes
// the artifact. The rename is the commit point.
func (c *Cache) put(file string, a Artifact) error {
	// Files from blobTemp are 0444 from their first byte; a partial
	// download is made read-only only now, as it had to stay writable to
	// resume. Either way it is not a blob until the rename.
	if fi, err := os.Stat(file); err != nil {
		return err
	} else if fi.Mode().Perm() != 0o444 {
		if err := os.Chmod(file, 0o444); err != nil {
			return err
		}
	}
	dst := c.BlobPath(a.SHA256)
	if err := os.Rename(file, dst); err != nil {
		return err
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return err
	}
	if err := c.recordState(a.SHA256, fi); err != nil {
		return err
	}
	return c.index(a)
}

// blobTemp creates a temp file in partial/ with a blob's mode, 0444, before
// its first byte (the descriptor stays writable).
func (c *Cache) blobTemp(pattern string) (*os.File, error) {
	f, err := os.CreateTemp(filepath.Join(c.root, "partial"), pattern)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o444); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// remove drops a blob and its state record (a corrupt blob must not linger).
func (c *Cache) remove(sum string) error {
	err := os.Remove(c.BlobPath(sum))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if e := os.Remove(c.statePath(sum)); e != nil && !errors.Is(e, fs.ErrNotExist) && err == nil {
		err = e
	}
	return err
}

// Import adds a local file to the cache (for artifacts carried in by hand).
// It is copied, hashed and, if a.SHA256 is set, checked against it.
func (c *Cache) Import(file string, a Artifact) (Artifact, error) {
	src, err := os.Open(file)
	if err != nil {
		return a, err
	}
	defer src.Close()
	tmp, err := c.blobTemp("import-*")
	if err != nil {
		return a, err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), src)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return a, fmt.Errorf("import %s: %w", a.label(), err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if a.SHA256 != "" && a.SHA256 != got {
		return a, &ChecksumError{Artifact: a.label(), URL: file, Expected: a.SHA256, Actual: got}
	}
	a.SHA256, a.Size = got, n
	if a.Name == "" {
		a.Name = filepath.Base(file)
	}
	return a, c.put(tmp.Name(), a)
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
