// Package payload writes the disk image an air-gapped node installs from: a
// raw disk holding one fresh ext4 file system (label BAIPAYLOAD, no partition
// table) with
//
//	apt/            a flat apt repository: the .debs, Packages, Packages.gz, Release
//	python/         python-build-standalone tarballs
//	images/         docker-load (docker save) tarballs
//	manifest.json   size and sha256 of every file above
//
// The file system is always created new by go-diskfs and never edited
// afterwards (go-diskfs corrupts existing ext4 file systems it edits, as
// our tests of it showed). The node mounts it read-only, checks
// every file against manifest.json and installs with apt from file:.
package payload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/ext4"

	"github.com/lablup/bainode/builder/atomicfile"
	"github.com/lablup/bainode/builder/fetch"
	install "github.com/lablup/bainode/builder/plan"
)

// Label is the file system label the node looks for (blkid -L BAIPAYLOAD).
const Label = "BAIPAYLOAD"

// InstalledFile is where an installer leaves the payload image on the
// installed system when no disk carries it ('bainode iso --mode autoinstall
// --payload'): the provisioning script loop-mounts it instead.
const InstalledFile = "/var/lib/bainode/payload.img"

// ManifestName is the manifest's path in the file system.
const ManifestName = "manifest.json"

// ManifestFormat is bumped when the manifest's meaning changes (the plan
// owns it, render hands it to the node).
const ManifestFormat = install.PayloadFormat

// Kind says which directory an item goes to.
type Kind string

// The kinds of item, as the plan names them.
const (
	KindDeb    Kind = install.KindDeb    // apt/
	KindPython Kind = install.KindPython // python/
	KindImage  Kind = install.KindImage  // images/
)

// kindDir is the directory of each kind (the plan owns them).
var kindDir = map[Kind]string{
	KindDeb:    install.PayloadDir[install.KindDeb],
	KindPython: install.PayloadDir[install.KindPython],
	KindImage:  install.PayloadDir[install.KindImage],
}

// Item is one file to carry.
type Item struct {
	Kind Kind
	// Name is the file's name in its directory; default: the base name of
	// Path.
	Name string
	// Path is a local file. Without it the item is the cache blob of SHA256.
	Path string
	// SHA256 and Size, when set, are what the bytes must be; they are
	// checked while the file is copied in.
	SHA256 string
	Size   int64
	// Refs are the image references a docker-load tarball provides; read
	// from its manifest.json when empty.
	Refs []string
}

// Options tune Build.
type Options struct {
	// Progress gets one line per file; nil for none.
	Progress io.Writer
	// Label overrides the file system label (tests); default Label.
	Label string
}

// Manifest is manifest.json.
type Manifest struct {
	Format int    `json:"format"`
	Label  string `json:"label"`
	// Files lists every file of the payload but the manifest, sorted by path.
	Files []ManifestFile `json:"files"`
	// Packages are the .debs the apt repository holds.
	Packages []Package `json:"packages,omitempty"`
	// Images are the docker-load tarballs and the references they restore.
	Images []Image `json:"images,omitempty"`
	// Python are the python-build-standalone tarballs.
	Python []string `json:"python,omitempty"`
}

// ManifestFile is one file's size and sha256.
type ManifestFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Package is one .deb of the apt repository.
type Package struct {
	Package      string `json:"package"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
	File         string `json:"file"`
}

// Image is one docker-load tarball.
type Image struct {
	File string `json:"file"`
	// Refs are the references it restores, normalised (plan.ImageKey), so
	// that the node looks an image up by its key exactly.
	Refs []string `json:"refs"`
}

// imageKeys are the normalised refs, sorted, each once.
func imageKeys(refs []string) []string {
	out := []string{}
	for _, r := range refs {
		out = append(out, install.ImageKey(r))
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// blockSize is the file system's block size. go-diskfs picks 1 KiB blocks
// below 512 MiB, with a resize inode that e2fsck calls invalid; 4 KiB
// blocks without the resize inode check clean at every size.
const blockSize = 4096

// copyBuf is the copy buffer; writes this big keep a file in few extents.
const copyBuf = 8 << 20

// entry is a planned file: where its bytes come from and where they go.
type entry struct {
	item    Item
	src     string // file to read, or "" for data
	data    []byte // generated content
	dst     string // path in the file system
	size    int64
	control Control // .debs
}

// aptRepo sorts the .debs (their item.SHA256 set) as apt lists them and
// writes the flat repository's indexes, Filename relative to apt/.
func aptRepo(debs []*entry) (pkgs []Package, packages, packagesGz, release []byte, err error) {
	debs = append([]*entry(nil), debs...)
	sort.Slice(debs, func(i, j int) bool {
		a, b := debs[i].control, debs[j].control
		if a.Get("Package") != b.Get("Package") {
			return a.Get("Package") < b.Get("Package")
		}
		if c := fetch.CompareDebVersions(a.Get("Version"), b.Get("Version")); c != 0 {
			return c < 0
		}
		return a.Get("Architecture") < b.Get("Architecture")
	})
	var stanzas []string
	for _, e := range debs {
		stanzas = append(stanzas, e.control.stanza("./"+e.item.Name, e.size, e.item.SHA256))
		pkgs = append(pkgs, Package{Package: e.control.Get("Package"), Version: e.control.Get("Version"),
			Architecture: e.control.Get("Architecture"), File: e.dst})
	}
	packages, packagesGz, release, err = aptIndexes(stanzas)
	return pkgs, packages, packagesGz, release, err
}

// Build writes the payload disk image to path, atomically: a temporary file
// next to it is renamed over path only when complete. Items without a Path
// come from c (which may be nil when every item has a Path). An empty item
// list gives a payload with only the manifest.
func Build(ctx context.Context, path string, c *fetch.Cache, items []Item, o Options) (err error) {
	if o.Label == "" {
		o.Label = Label
	}
	if len(o.Label) > 16 {
		return fmt.Errorf("payload: label %q is longer than 16 bytes", o.Label)
	}
	plan, err := planItems(c, items)
	if err != nil {
		return err
	}

	// Created 0644 in a scratch directory, renamed into place when whole.
	tmp, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Abort()
		}
	}()
	size := imageSize(plan)
	if err := tmp.Truncate(size); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	fsys, err := ext4.Create(file.New(tmp.File, false), size, 0, 512, &ext4.Params{
		VolumeName:      o.Label,
		SectorsPerBlock: blockSize / 512,
		InodeCount:      inodeCount(plan),
		Features: []ext4.FeatureOpt{
			ext4.WithFeatureReservedGDTBlocksForExpansion(false),
			// Mounted read-only: a journal would only take space.
			ext4.WithFeatureHasJournal(false),
		},
	})
	if err != nil {
		return fmt.Errorf("payload: creating the ext4 file system: %w", err)
	}
	w := &writer{fs: fsys, ctx: ctx, progress: o.Progress, label: o.Label, total: len(plan.files) + plan.generated()}
	if err := w.write(plan); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	if err := tmp.Commit(); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	return nil
}

// plan is every file to write, in order.
type plan struct {
	files  []*entry // items, by directory then name
	debs   []*entry
	images []*entry
	python []*entry
}

// generated counts the files written from data: Packages, Packages.gz and
// Release when there are .debs, and the manifest.
func (p *plan) generated() int {
	if len(p.debs) > 0 {
		return 4
	}
	return 1
}

func planItems(c *fetch.Cache, items []Item) (*plan, error) {
	p := &plan{}
	seen := map[string]bool{}
	for _, it := range items {
		d, ok := kindDir[it.Kind]
		if !ok {
			return nil, fmt.Errorf("payload: item %q: unknown kind %q", it.Name+it.Path, it.Kind)
		}
		e := &entry{item: it}
		switch {
		case it.Path != "":
			e.src = it.Path
		case c != nil && isHexSum(it.SHA256):
			e.src = c.BlobPath(it.SHA256)
		default:
			return nil, fmt.Errorf("payload: item %q has neither a path nor a cached sha256", it.Name)
		}
		if it.Name == "" {
			it.Name = filepath.Base(it.Path)
			e.item.Name = it.Name
		}
		if err := checkName(it.Name); err != nil {
			return nil, fmt.Errorf("payload: %s: %w", it.Name, err)
		}
		if d == "apt" && !strings.HasSuffix(it.Name, ".deb") {
			return nil, fmt.Errorf("payload: %s: a package's name must end in .deb", it.Name)
		}
		if d == "apt" && (it.Name == "Packages" || it.Name == "Packages.gz" || it.Name == "Release") {
			return nil, fmt.Errorf("payload: %s: reserved name", it.Name)
		}
		e.dst = d + "/" + it.Name
		if seen[e.dst] {
			return nil, fmt.Errorf("payload: %s is given twice", e.dst)
		}
		seen[e.dst] = true
		fi, err := os.Stat(e.src)
		if err != nil {
			if it.Path == "" && errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("payload: %s (sha256 %s) is not in the cache %s; run bainode fetch", it.Name, it.SHA256, c.Root())
			}
			return nil, fmt.Errorf("payload: %s: %w", it.Name, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("payload: %s: %s is not a regular file", it.Name, e.src)
		}
		if it.Size > 0 && fi.Size() != it.Size {
			return nil, fmt.Errorf("payload: %s: %s is %d bytes, want %d", it.Name, e.src, fi.Size(), it.Size)
		}
		e.size = fi.Size()
		switch it.Kind {
		case KindDeb:
			if e.control, err = ReadDebControl(e.src); err != nil {
				return nil, fmt.Errorf("payload: %s: %w", it.Name, err)
			}
			p.debs = append(p.debs, e)
		case KindImage:
			if len(it.Refs) == 0 {
				if e.item.Refs, err = ImageRefs(e.src); err != nil {
					return nil, fmt.Errorf("payload: %s: %w", it.Name, err)
				}
			}
			p.images = append(p.images, e)
		case KindPython:
			p.python = append(p.python, e)
		}
		p.files = append(p.files, e)
	}
	sort.Slice(p.files, func(i, j int) bool { return p.files[i].dst < p.files[j].dst })
	// Two .debs of one package, version and architecture would make apt
	// pick one at random.
	pkgs := map[string]string{}
	for _, e := range p.debs {
		k := e.control.Get("Package") + " " + e.control.Get("Version") + " " + e.control.Get("Architecture")
		if other, dup := pkgs[k]; dup {
			return nil, fmt.Errorf("payload: %s and %s are both %s", other, e.item.Name, k)
		}
		pkgs[k] = e.item.Name
	}
	return p, nil
}

// checkName allows names that are safe in a path, on the node's shell and
// in apt's Filename field.
func checkName(n string) error {
	if n == "" || n == "." || n == ".." || strings.HasPrefix(n, ".") {
		return errors.New("bad file name")
	}
	if len(n) > 255 {
		return errors.New("file name longer than 255 bytes")
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._+-~:%=@,", r)) {
			return fmt.Errorf("file name has %q; allowed are letters, digits and ._+-~:%%=@,", r)
		}
	}
	return nil
}

// imageSize is the disk size for the plan: every file rounded up to whole
// blocks, extent tree blocks, room for the generated indexes, and the file
// system's own metadata, rounded up to MiB.
func imageSize(p *plan) int64 {
	var data int64
	blocks := func(n int64) int64 { return (n + blockSize - 1) / blockSize }
	for _, e := range p.files {
		b := blocks(e.size)
		// A write of copyBuf bytes may become its own extent; past four
		// extents the inode needs tree blocks (340 extents each).
		b += 1 + (e.size/copyBuf+1)/340 + 1
		data += b * blockSize
	}
	var idx int64
	for _, e := range p.debs {
		idx += int64(len(e.control.stanza(e.dst, e.size, strings.Repeat("0", 64)))) + 1
	}
	idx = 2*idx + 64<<10 // Packages, Packages.gz (smaller), Release
	manifest := int64(4<<10) + int64(len(p.files))*400
	data += (blocks(idx) + blocks(manifest) + 16) * blockSize
	// Metadata: inode tables (256 bytes an inode), bitmaps and group
	// descriptors with their backups: about 3 %, plus a floor for tiny
	// payloads.
	size := data + data/32 + 4<<20
	const mib = 1 << 20
	return (size + mib - 1) / mib * mib
}

func inodeCount(p *plan) uint32 {
	// 11 reserved inodes, lost+found, the directories, the files, the
	// indexes and the manifest, with room to spare.
	return uint32(64 + 2*len(p.files))
}

// writer copies the plan into the file system.
type writer struct {
	fs       *ext4.FileSystem
	ctx      context.Context
	progress io.Writer
	label    string
	total    int
	n        int
	buf      []byte
}

func (w *writer) write(p *plan) error {
	// e2fsck wants a lost+found; go-diskfs does not make one.
	if err := w.fs.Mkdir("lost+found"); err != nil {
		return fmt.Errorf("payload: lost+found: %w", err)
	}
	if err := w.fs.Chmod("lost+found", os.ModeDir|0o700); err != nil {
		return fmt.Errorf("payload: lost+found: %w", err)
	}
	for _, d := range []struct {
		name string
		n    int
	}{{"apt", len(p.debs)}, {"images", len(p.images)}, {"python", len(p.python)}} {
		if d.n > 0 {
			if err := w.fs.Mkdir(d.name); err != nil {
				return fmt.Errorf("payload: %s: %w", d.name, err)
			}
		}
	}
	m := Manifest{Format: ManifestFormat, Label: w.label, Files: []ManifestFile{}}
	for _, e := range p.files {
		sum, err := w.copyFile(e)
		if err != nil {
			return err
		}
		e.item.SHA256 = sum
		m.Files = append(m.Files, ManifestFile{Path: e.dst, Size: e.size, SHA256: sum})
	}
	if len(p.debs) > 0 {
		pkgs, pk, gz, rel, err := aptRepo(p.debs)
		if err != nil {
			return fmt.Errorf("payload: apt indexes: %w", err)
		}
		m.Packages = pkgs
		for _, g := range []struct {
			name string
			b    []byte
		}{{"apt/Packages", pk}, {"apt/Packages.gz", gz}, {"apt/Release", rel}} {
			if err := w.writeData(g.name, g.b); err != nil {
				return err
			}
			m.Files = append(m.Files, ManifestFile{Path: g.name, Size: int64(len(g.b)), SHA256: sha256Hex(g.b)})
		}
	}
	for _, e := range p.images {
		m.Images = append(m.Images, Image{File: e.dst, Refs: imageKeys(e.item.Refs)})
	}
	for _, e := range p.python {
		m.Python = append(m.Python, e.dst)
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return w.writeData(ManifestName, append(b, '\n'))
}

func (w *writer) note(name string, size int64) {
	w.n++
	if w.progress != nil {
		fmt.Fprintf(w.progress, "payload: [%d/%d] %s (%s)\n", w.n, w.total, name, humanSize(size))
	}
}

// copyFile copies e's source into the file system and returns its sha256,
// checked against the item's when it has one.
func (w *writer) copyFile(e *entry) (string, error) {
	if err := w.ctx.Err(); err != nil {
		return "", err
	}
	w.note(e.dst, e.size)
	src, err := os.Open(e.src)
	if err != nil {
		return "", fmt.Errorf("payload: %s: %w", e.dst, err)
	}
	defer src.Close()
	dst, err := w.fs.OpenFile(e.dst, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return "", fmt.Errorf("payload: creating %s: %w", e.dst, err)
	}
	h := sha256.New()
	n, err := w.copy(dst, src, h)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.fs.Chmod(e.dst, 0o644) // go-diskfs makes files 0755
	}
	if err != nil {
		return "", fmt.Errorf("payload: writing %s from %s: %w", e.dst, e.src, err)
	}
	if n != e.size {
		return "", fmt.Errorf("payload: %s: %s changed size while it was copied (%d bytes, had %d)", e.dst, e.src, n, e.size)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want := e.item.SHA256; want != "" && sum != want {
		where := e.src
		if e.item.Path == "" {
			where = "the cache (run bainode fetch --check)"
		}
		return "", fmt.Errorf("payload: %s: sha256 %s, want %s: %s is corrupt", e.dst, sum, want, where)
	}
	return sum, nil
}

// copy writes in copyBuf chunks (each Write allocates its extents at once).
func (w *writer) copy(dst io.Writer, src io.Reader, h hash.Hash) (int64, error) {
	if w.buf == nil {
		w.buf = make([]byte, copyBuf)
	}
	var n int64
	for {
		if err := w.ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := io.ReadFull(src, w.buf)
		if k > 0 {
			h.Write(w.buf[:k])
			if _, err := dst.Write(w.buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

func (w *writer) writeData(name string, b []byte) error {
	w.note(name, int64(len(b)))
	f, err := w.fs.OpenFile(name, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return fmt.Errorf("payload: creating %s: %w", name, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.fs.Chmod(name, 0o644)
	}
	if err != nil {
		return fmt.Errorf("payload: writing %s: %w", name, err)
	}
	return nil
}

// ReadManifest parses manifest.json bytes.
func ReadManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("manifest: format %d, want %d", m.Format, ManifestFormat)
	}
	for _, f := range m.Files {
		if !isHexSum(f.SHA256) || f.Size < 0 || path.Clean(f.Path) != f.Path || strings.HasPrefix(f.Path, "/") || strings.HasPrefix(f.Path, "..") {
			return nil, fmt.Errorf("manifest: bad entry %+v", f)
		}
	}
	return &m, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
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

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// CheckImage tells whether path is a payload image: an ext4 file system
// labelled Label at its first byte (no partition table).
func CheckImage(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		return fmt.Errorf("%s: not a payload image ('bainode payload' writes one): %v", path, err)
	}
	label := strings.TrimRight(string(sb[0x78:0x88]), "\x00")
	if sb[0x38] != 0x53 || sb[0x39] != 0xef || label != Label {
		return fmt.Errorf("%s: not a payload image ('bainode payload' writes one): no ext4 file system labelled %s", path, Label)
	}
	return nil
}
