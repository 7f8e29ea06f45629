package fetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ulikunitz/xz"
	"pault.ag/go/debian/control"
)

// AptSource is one apt "deb" line: deb URI SUITE [COMPONENT...]. A Suite
// ending in "/" is a flat repository (NVIDIA's "deb URI /"), which has no
// dists/ tree and no components.
type AptSource struct {
	URI        string   // https://download.docker.com/linux/ubuntu
	Suite      string   // focal, or "/" for a flat repository
	Components []string // stable
	Arch       string   // amd64 (default)
	Keyring    openpgp.EntityList
}

func (s AptSource) flat() bool { return strings.HasSuffix(s.Suite, "/") }

// distURL is the directory holding InRelease.
func (s AptSource) distURL() string {
	uri := strings.TrimSuffix(s.URI, "/")
	if s.flat() {
		if sub := strings.Trim(s.Suite, "/"); sub != "" {
			return uri + "/" + sub + "/"
		}
		return uri + "/"
	}
	return uri + "/dists/" + s.Suite + "/"
}

func (s AptSource) String() string {
	return strings.TrimSpace(fmt.Sprintf("deb %s %s %s", s.URI, s.Suite, strings.Join(s.Components, " ")))
}

// FileHash is an index file's entry in a Release file.
type FileHash struct {
	Size   int64
	SHA256 string
}

// Release is a verified (In)Release file.
type Release struct {
	Fields map[string]string   // single-line fields: Origin, Suite, Codename, Date, Valid-Until...
	SHA256 map[string]FileHash // index path (relative to the dist directory) -> hash
}

// VerifyInRelease checks the clearsigned InRelease with keyring and parses
// only the signed text. An InRelease past its Valid-Until is refused: an old,
// validly signed file is how a mirror would replay known-vulnerable packages.
func VerifyInRelease(data []byte, keyring openpgp.EntityList, now time.Time) (*Release, error) {
	if len(keyring) == 0 {
		return nil, fmt.Errorf("InRelease: no trusted key to check the signature with")
	}
	block, _ := clearsign.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("InRelease: not a clearsigned file")
	}
	if _, err := block.VerifySignature(keyring, nil); err != nil {
		return nil, fmt.Errorf("InRelease: bad signature: %w", err)
	}
	rel, err := ParseRelease(block.Plaintext)
	if err != nil {
		return nil, err
	}
	if vu := rel.Fields["Valid-Until"]; vu != "" {
		if t, err := parseAptDate(vu); err == nil && now.After(t) {
			return nil, fmt.Errorf("InRelease: expired (Valid-Until %s)", vu)
		}
	}
	return rel, nil
}

func parseAptDate(s string) (time.Time, error) {
	var err error
	for _, layout := range []string{time.RFC1123, time.RFC1123Z, "Mon, _2 Jan 2006 15:04:05 MST", "Mon, _2 Jan 2006 15:04:05 -0700"} {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}

// ParseRelease reads a Release file's fields and its SHA256 list.
func ParseRelease(b []byte) (*Release, error) {
	st, err := ReadParagraphs(b)
	if err == nil && len(st) == 0 {
		err = errors.New("empty")
	}
	if err != nil {
		return nil, fmt.Errorf("Release: %w", err)
	}
	rel := &Release{Fields: map[string]string{}, SHA256: map[string]FileHash{}}
	for k, v := range st[0].Values {
		if !strings.Contains(v, "\n") {
			rel.Fields[k] = v
		}
	}
	for _, line := range strings.Split(st[0].Values["SHA256"], "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || !isHexSum(strings.ToLower(f[0])) {
			return nil, fmt.Errorf("Release: bad SHA256 line %q", line)
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("Release: bad size in %q", line)
		}
		rel.SHA256[f[2]] = FileHash{Size: size, SHA256: strings.ToLower(f[0])}
	}
	if len(rel.SHA256) == 0 {
		return nil, fmt.Errorf("Release: no SHA256 entries")
	}
	return rel, nil
}

// AptPackage is one stanza of a Packages index.
type AptPackage struct {
	Package, Version, Architecture string
	Filename                       string
	Size                           int64
	SHA256                         string
	Depends, PreDepends, Provides  string
	BaseURL                        string // the source URI that Filename is relative to
}

// Artifact is the .deb as a pinned artifact.
func (p AptPackage) Artifact() Artifact {
	return Artifact{
		Name:    path.Base(p.Filename),
		URL:     strings.TrimSuffix(p.BaseURL, "/") + "/" + strings.TrimPrefix(path.Clean("/"+p.Filename), "/"),
		Size:    p.Size,
		SHA256:  p.SHA256,
		Version: p.Version,
		Kind:    "deb",
	}
}

func (p AptPackage) String() string { return p.Package + "=" + p.Version }

// Packages fetches and verifies InRelease, then each component's Packages
// index (xz, gz or plain, whichever InRelease lists), checks its size and
// sha256 against InRelease, and returns the packages for s.Arch and "all".
func (s AptSource) Packages(ctx context.Context, o Options) ([]AptPackage, error) {
	o = o.withDefaults()
	arch := s.Arch
	if arch == "" {
		arch = "amd64"
	}
	inURL := s.distURL() + "InRelease"
	data, err := getSmall(ctx, inURL, o)
	if err != nil {
		return nil, err
	}
	rel, err := VerifyInRelease(data, s.Keyring, time.Now())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", inURL, err)
	}
	dirs := []string{""}
	if !s.flat() {
		if len(s.Components) == 0 {
			return nil, fmt.Errorf("apt source %s: no component", s)
		}
		dirs = nil
		for _, c := range s.Components {
			dirs = append(dirs, c+"/binary-"+arch+"/")
		}
	}
	var out []AptPackage
	for _, dir := range dirs {
		raw, err := s.fetchPackagesIndex(ctx, rel, dir, o)
		if err != nil {
			return nil, err
		}
		pkgs, err := ParsePackages(raw)
		if err != nil {
			return nil, fmt.Errorf("%s%sPackages: %w", s.distURL(), dir, err)
		}
		for _, p := range pkgs {
			if p.Architecture == arch || p.Architecture == "all" {
				p.BaseURL = s.URI
				out = append(out, p)
			}
		}
	}
	return out, nil
}

func (s AptSource) fetchPackagesIndex(ctx context.Context, rel *Release, dir string, o Options) ([]byte, error) {
	for _, ext := range []string{".xz", ".gz", ""} {
		name := dir + "Packages" + ext
		fh, ok := rel.SHA256[name]
		if !ok {
			continue
		}
		u := s.distURL() + name
		b, err := getSmall(ctx, u, o)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); int64(len(b)) != fh.Size || got != fh.SHA256 {
			return nil, fmt.Errorf("%s: does not match InRelease: expected sha256 %s (%d bytes), got %s (%d bytes)",
				u, fh.SHA256, fh.Size, got, len(b))
		}
		var r io.Reader = bytes.NewReader(b)
		switch ext {
		case ".gz":
			if r, err = gzip.NewReader(r); err != nil {
				return nil, fmt.Errorf("%s: %w", u, err)
			}
		case ".xz":
			if r, err = xz.NewReader(r); err != nil {
				return nil, fmt.Errorf("%s: %w", u, err)
			}
		}
		raw, err := io.ReadAll(io.LimitReader(r, 4*maxIndexSize))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u, err)
		}
		return raw, nil
	}
	return nil, fmt.Errorf("%sInRelease lists no %sPackages index", s.distURL(), dir)
}

// ParsePackages reads a Packages index. Every package must carry Filename,
// Size and SHA256: without them its bytes could not be pinned.
func ParsePackages(b []byte) ([]AptPackage, error) {
	st, err := ReadParagraphs(b)
	if err != nil {
		return nil, err
	}
	out := make([]AptPackage, 0, len(st))
	for n, para := range st {
		s := para.Values
		p := AptPackage{Package: s["Package"], Version: s["Version"], Architecture: s["Architecture"],
			Filename: s["Filename"], SHA256: strings.ToLower(s["SHA256"]),
			Depends: s["Depends"], PreDepends: s["Pre-Depends"], Provides: s["Provides"]}
		if p.Package == "" || p.Version == "" {
			return nil, fmt.Errorf("paragraph %d: no Package or Version", n+1)
		}
		if _, err := parseDebVersion(p.Version); err != nil {
			return nil, fmt.Errorf("package %s: Version: %w", p, err)
		}
		size, err := strconv.ParseInt(s["Size"], 10, 64)
		if err != nil || p.Filename == "" || !isHexSum(p.SHA256) {
			return nil, fmt.Errorf("package %s: missing or bad Filename, Size or SHA256", p)
		}
		p.Size = size
		out = append(out, p)
	}
	return out, nil
}

// ReadParagraphs reads deb822 text (a Packages index, a Release file, a
// control file) with the control library's reader: continuation lines are
// joined with "\n" (a lone "." stands for an empty line), and each value of
// more than one line ends in "\n".
func ReadParagraphs(b []byte) ([]control.Paragraph, error) {
	// Given no keyring, the reader would take a clearsigned text's content
	// unchecked: signed text must come here only after VerifyInRelease.
	if bytes.HasPrefix(b, []byte("-----BEGIN PGP")) {
		return nil, errors.New("a signed text where plain deb822 was expected")
	}
	r, err := control.NewParagraphReader(bytes.NewReader(b), nil)
	if err != nil {
		return nil, err
	}
	var out []control.Paragraph
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("paragraph %d: %w", len(out)+1, err)
		}
		if _, ok := p.Values[""]; ok {
			return nil, fmt.Errorf("paragraph %d: continuation line before any field", len(out)+1)
		}
		out = append(out, *p)
	}
}

// WriteParagraph writes p with the control library's writer, after turning
// the reader's form of values back into deb822's: no trailing "\n", and an
// empty continuation line as ".".
func WriteParagraph(w io.Writer, p control.Paragraph) error {
	out := control.Paragraph{Values: map[string]string{}}
	for _, k := range p.Order {
		lines := strings.Split(strings.TrimSuffix(p.Values[k], "\n"), "\n")
		for i := 1; i < len(lines); i++ {
			if strings.TrimSpace(lines[i]) == "" {
				lines[i] = "."
			}
		}
		out.Set(k, strings.Join(lines, "\n"))
	}
	return out.WriteTo(w)
}
