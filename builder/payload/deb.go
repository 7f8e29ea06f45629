package payload

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Control is a binary package's control file: its fields in file order.
type Control struct {
	Fields []Field
}

// Field is one control field; multi-line values keep their continuation
// lines (each starting with a space) after a "\n".
type Field struct{ Name, Value string }

// Get returns a field's value, or "".
func (c Control) Get(name string) string {
	for _, f := range c.Fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// maxControl bounds what we read of a control archive and its control file:
// real ones are a few KiB; a bigger one is not a .deb we want.
const maxControl = 16 << 20

// ReadDebControl reads the control file of the .deb at path: the ar archive's
// control.tar (plain, .gz, .xz or .zst), then its ./control member.
func ReadDebControl(path string) (Control, error) {
	f, err := os.Open(path)
	if err != nil {
		return Control{}, err
	}
	defer f.Close()
	c, err := readDebControl(bufio.NewReaderSize(f, 64<<10))
	if err != nil {
		return Control{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func readDebControl(r io.Reader) (Control, error) {
	magic := make([]byte, 8)
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != "!<arch>\n" {
		return Control{}, errors.New("not a .deb: no ar archive header")
	}
	for first := true; ; first = false {
		var hdr [60]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return Control{}, errors.New("not a .deb: no control.tar member")
			}
			return Control{}, fmt.Errorf("reading ar header: %w", err)
		}
		if string(hdr[58:60]) != "`\n" {
			return Control{}, errors.New("not a .deb: bad ar member header")
		}
		name := strings.TrimSuffix(strings.TrimSpace(string(hdr[0:16])), "/")
		size, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err != nil || size < 0 {
			return Control{}, fmt.Errorf("not a .deb: bad size in ar member %q", name)
		}
		if first && name != "debian-binary" {
			return Control{}, fmt.Errorf("not a .deb: first member is %q, not debian-binary", name)
		}
		body := io.LimitReader(r, size)
		if strings.HasPrefix(name, "control.tar") {
			if size > maxControl {
				return Control{}, fmt.Errorf("%s is %d bytes; too big", name, size)
			}
			return readControlTar(name, body)
		}
		if strings.HasPrefix(name, "data.tar") {
			return Control{}, errors.New("not a .deb: data.tar before control.tar")
		}
		// Members are padded to an even size.
		if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
			return Control{}, fmt.Errorf("reading ar member %q: %w", name, err)
		}
	}
}

func readControlTar(name string, r io.Reader) (Control, error) {
	var (
		zr  io.Reader
		err error
	)
	switch strings.TrimPrefix(name, "control.tar") {
	case "":
		zr = r
	case ".gz":
		var g *gzip.Reader
		if g, err = gzip.NewReader(r); err == nil {
			defer g.Close()
			zr = g
		}
	case ".xz":
		zr, err = xz.NewReader(r)
	case ".zst":
		var d *zstd.Decoder
		if d, err = zstd.NewReader(r, zstd.WithDecoderConcurrency(1)); err == nil {
			defer d.Close()
			zr = d
		}
	default:
		return Control{}, fmt.Errorf("%s: unknown compression", name)
	}
	if err != nil {
		return Control{}, fmt.Errorf("%s: %w", name, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return Control{}, fmt.Errorf("%s has no control file", name)
			}
			return Control{}, fmt.Errorf("%s: %w", name, err)
		}
		if strings.TrimPrefix(h.Name, "./") != "control" || h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxControl))
		if err != nil {
			return Control{}, fmt.Errorf("%s: control: %w", name, err)
		}
		return ParseControl(b)
	}
}

// ParseControl reads one deb822 stanza.
func ParseControl(b []byte) (Control, error) {
	var c Control
	for n, line := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			if len(c.Fields) > 0 {
				// A control file is one stanza; anything after a blank line is ignored.
				return c.check()
			}
		case line[0] == ' ' || line[0] == '\t':
			if len(c.Fields) == 0 {
				return c, fmt.Errorf("control line %d: continuation before any field", n+1)
			}
			c.Fields[len(c.Fields)-1].Value += "\n" + line
		case line[0] == '#':
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok || strings.TrimSpace(k) == "" || strings.ContainsAny(k, " \t") {
				return c, fmt.Errorf("control line %d: %q is not a field", n+1, line)
			}
			c.Fields = append(c.Fields, Field{Name: k, Value: strings.TrimSpace(v)})
		}
	}
	return c.check()
}

func (c Control) check() (Control, error) {
	for _, f := range []string{"Package", "Version", "Architecture"} {
		if v := c.Get(f); v == "" || strings.ContainsAny(v, " \t\n") {
			return c, fmt.Errorf("control file: missing or bad %s", f)
		}
	}
	return c, nil
}

// stanza renders the control fields plus the index fields apt needs, in the
// order dpkg-scanpackages uses: control fields (Description last), then
// Filename, Size and SHA256 before Description.
func (c Control) stanza(filename string, size int64, sha string) string {
	var b strings.Builder
	var desc []Field
	for _, f := range c.Fields {
		switch strings.ToLower(f.Name) {
		case "filename", "size", "md5sum", "sha1", "sha256", "sha512":
			continue // ours win
		case "description":
			desc = append(desc, f)
			continue
		}
		fmt.Fprintf(&b, "%s: %s\n", f.Name, f.Value)
	}
	fmt.Fprintf(&b, "Filename: %s\nSize: %d\nSHA256: %s\n", filename, size, sha)
	for _, f := range desc {
		fmt.Fprintf(&b, "%s: %s\n", f.Name, f.Value)
	}
	return b.String()
}

// aptIndexes returns Packages (one stanza per .deb, sorted as given), its
// gzip form, and a Release file listing both by size and sha256.
func aptIndexes(stanzas []string) (packages, packagesGz, release []byte, err error) {
	packages = []byte(strings.Join(stanzas, "\n"))
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	// No name or time in the gzip header: same debs, same bytes.
	if _, err := zw.Write(packages); err != nil {
		return nil, nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, nil, err
	}
	packagesGz = gz.Bytes()
	var r strings.Builder
	// apt wants a Date; a fixed one in the past keeps the file reproducible
	// and never "not valid yet" on a node whose clock is behind. No
	// signature: the source line says [trusted=yes], and the payload's
	// manifest is what the node verifies.
	r.WriteString("Origin: bainode\nLabel: bainode payload\nSuite: payload\nCodename: payload\n")
	r.WriteString("Date: Sat, 01 Jan 2000 00:00:00 UTC\n")
	r.WriteString("Description: packages carried to an air-gapped node by bainode payload\nSHA256:\n")
	for _, f := range []struct {
		name string
		b    []byte
	}{{"Packages", packages}, {"Packages.gz", packagesGz}} {
		fmt.Fprintf(&r, " %s %d %s\n", sha256Hex(f.b), len(f.b), f.name)
	}
	return packages, packagesGz, []byte(r.String()), nil
}
