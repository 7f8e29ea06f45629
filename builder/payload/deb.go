package payload

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"strconv"
	"strings"

	"pault.ag/go/debian/control"
	"pault.ag/go/debian/deb"

	"github.com/lablup/bainode/builder/fetch"
)

// Control is a binary package's control file, its fields in file order.
type Control struct{ control.Paragraph }

// Get returns a field's value, or "".
func (c Control) Get(name string) string {
	for _, k := range c.Order {
		if strings.EqualFold(k, name) {
			return c.Values[k]
		}
	}
	return ""
}

// ReadDebControl reads the control file of the .deb at path (its
// control.tar, plain or compressed) with the deb library, which also checks
// that Package, Version and Architecture are there and well-formed.
func ReadDebControl(path string) (Control, error) {
	f, err := os.Open(path)
	if err != nil {
		return Control{}, err
	}
	defer f.Close()
	d, err := deb.Load(f, path)
	if err != nil {
		return Control{}, fmt.Errorf("%s: not a readable .deb: %w", path, err)
	}
	defer d.Close()
	c := Control{d.Control.Paragraph}
	for _, k := range []string{"Package", "Version", "Architecture"} {
		if v := c.Get(k); v == "" || strings.ContainsAny(v, " \t\n") {
			return Control{}, fmt.Errorf("%s: control file: missing or bad %s", path, k)
		}
	}
	return c, nil
}

// stanza renders the control fields plus the index fields apt needs, in the
// order dpkg-scanpackages uses: control fields (Description last), then
// Filename, Size and SHA256 before Description.
func (c Control) stanza(filename string, size int64, sha string) string {
	p := control.Paragraph{Values: map[string]string{}}
	var desc []string
	for _, k := range c.Order {
		switch strings.ToLower(k) {
		case "filename", "size", "md5sum", "sha1", "sha256", "sha512":
			continue // ours win
		case "description":
			desc = append(desc, k)
			continue
		}
		p.Set(k, c.Values[k])
	}
	p.Set("Filename", filename)
	p.Set("Size", strconv.FormatInt(size, 10))
	p.Set("SHA256", sha)
	for _, k := range desc {
		p.Set(k, c.Values[k])
	}
	var b strings.Builder
	fetch.WriteParagraph(&b, p) // a strings.Builder does not fail
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
	// apt wants a Date; a fixed one in the past keeps the file reproducible
	// and never "not valid yet" on a node whose clock is behind. No
	// signature: the source line says [trusted=yes], and the payload's
	// manifest is what the node verifies.
	rel := control.Paragraph{Values: map[string]string{}}
	rel.Set("Origin", "bainode")
	rel.Set("Label", "bainode payload")
	rel.Set("Suite", "payload")
	rel.Set("Codename", "payload")
	rel.Set("Date", "Sat, 01 Jan 2000 00:00:00 UTC")
	rel.Set("Description", "packages carried to an air-gapped node by bainode payload")
	sums := ""
	for _, f := range []struct {
		name string
		b    []byte
	}{{"Packages", packages}, {"Packages.gz", packagesGz}} {
		sums += fmt.Sprintf("\n%s %d %s", sha256Hex(f.b), len(f.b), f.name)
	}
	rel.Set("SHA256", sums)
	var r bytes.Buffer
	if err := fetch.WriteParagraph(&r, rel); err != nil {
		return nil, nil, nil, err
	}
	return packages, packagesGz, r.Bytes(), nil
}
