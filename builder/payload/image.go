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
)

// ImageArchiveName is the cache name of the docker-load tarball of an image
// reference: "cr.backend.ai/stable/python:3.9" -> "image_cr.backend.ai_stable_python_3.9.tar".
func ImageArchiveName(ref string) string {
	return "image_" + strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(ref) + ".tar"
}

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

// sameImage says whether a RepoTag names ref: docker load writes tags fully
// qualified or not, so "docker.io/library/x:1", "library/x:1" and "x:1"
// are one image, and a ref without a tag means ":latest".
func sameImage(tag, ref string) bool {
	return normRef(tag) == normRef(ref)
}

func normRef(r string) string {
	name, digest, hasDigest := strings.Cut(r, "@")
	if !hasDigest {
		if i := strings.LastIndex(name, ":"); i < 0 || strings.Contains(name[i:], "/") {
			name += ":latest"
		}
	}
	name = strings.TrimPrefix(name, "docker.io/")
	name = strings.TrimPrefix(name, "library/")
	if hasDigest {
		return name + "@" + digest
	}
	return name
}
