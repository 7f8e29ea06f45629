package payload

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	install "github.com/lablup/bainode/builder/plan"
)

// ImageArchiveName is the cache name of the docker-load tarball of an image
// reference (plan owns it).
func ImageArchiveName(ref string) string { return install.ImageArchiveName(ref) }

// ImageRefs returns the RepoTags of a docker-load tarball (what `docker
// save` writes; plain or gzipped): the references `docker load` restores.
func ImageRefs(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// A plain tar is read from the file itself, so that tar skips layers
	// with Seek instead of reading them (docker save puts manifest.json last).
	var r io.Reader = f
	magic := make([]byte, 2)
	if _, err := io.ReadFull(f, magic); err == nil && bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		zr, err := gzip.NewReader(bufio.NewReader(f))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	} else if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: no manifest.json: not a docker-load (docker save) tarball", path)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if strings.TrimPrefix(h.Name, "./") != "manifest.json" {
			continue
		}
		var m []struct{ RepoTags []string }
		if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&m); err != nil {
			return nil, fmt.Errorf("%s: manifest.json: %w", path, err)
		}
		var refs []string
		for _, e := range m {
			refs = append(refs, e.RepoTags...)
		}
		return refs, nil
	}
}

// sameImage says whether a RepoTag names ref, by their normalised forms.
func sameImage(tag, ref string) bool {
	return install.ImageKey(tag) == install.ImageKey(ref)
}
