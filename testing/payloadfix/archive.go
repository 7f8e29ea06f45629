package payloadfix

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// wrapperScript is the stand-in's python/bin/python3; @WHEEL@ is the
// name of Debian's pip wheel beside it.
const wrapperScript = `#!/bin/sh
# bainode test stand-in for python-build-standalone's python3: it runs the
# test base's /usr/bin/python3 (see testing/payloadfix).
here=$(cd "$(dirname "$0")" && pwd -P)
if [ "$1" = -m ] && [ "$2" = venv ]; then
	shift 2
	"$here/.python3-real" -m venv --without-pip "$@" || exit
	whl=$here/../lib/bainode-test/@WHEEL@
	for d; do
		case $d in -*) continue ;; esac
		"$d/bin/python" "$whl/pip" install --no-index --no-cache-dir --disable-pip-version-check -q "$whl" || exit
	done
	exit 0
fi
exec "$here/.python3-real" "$@"
`

// pythonStandIn writes a tarball in python-build-standalone's install_only
// layout (python/bin/python3, python/lib/python3.X). It is NOT a
// python-build-standalone build: the guest has no network and the test
// none either, so python/bin/python3 is a small shell wrapper around the
// test base's own /usr/bin/python3, and python/lib/python3.X a symlink to
// its standard library. "-m venv DIR" makes the venv from the real
// interpreter under this bin directory (so pyvenv.cfg's home is it, as
// with a real build) and puts pip in from Debian's pip wheel, because
// Debian's python3 has no ensurepip. It exercises what bainode does with
// the tarball (carry, verify, unpack, make venvs, verify versions), not a
// real static Python.
func pythonStandIn(t testing.TB, path, version, pipWheel string) {
	t.Helper()
	whl, err := os.ReadFile(pipWheel)
	if err != nil {
		t.Fatal(err)
	}
	whlName := filepath.Base(pipWheel)
	minor := strings.Join(strings.Split(version, ".")[:2], ".")
	wrapper := strings.ReplaceAll(wrapperScript, "@WHEEL@", whlName)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	ts := time.Unix(0, 0)
	for _, h := range []struct {
		hdr  tar.Header
		data []byte
	}{
		{tar.Header{Name: "python/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "python/bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "python/bin/python3", Typeflag: tar.TypeReg, Mode: 0o755}, []byte(wrapper)},
		{tar.Header{Name: "python/bin/.python3-real", Typeflag: tar.TypeSymlink, Linkname: "/usr/bin/python3", Mode: 0o777}, nil},
		{tar.Header{Name: "python/lib/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "python/lib/python" + minor, Typeflag: tar.TypeSymlink, Linkname: "/usr/lib/python" + minor, Mode: 0o777}, nil},
		{tar.Header{Name: "python/lib/bainode-test/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "python/lib/bainode-test/" + whlName, Typeflag: tar.TypeReg, Mode: 0o644}, whl},
	} {
		hdr := h.hdr
		hdr.Size, hdr.ModTime = int64(len(h.data)), ts
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(h.data); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []interface{ Close() error }{tw, zw, f} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// WriteDockerArchive writes a docker-load tarball of one image: a config
// with cmd, and one layer with the given files (name -> content; a content
// starting with "->" is a symlink target).
func WriteDockerArchive(t testing.TB, path, ref string, cmd []string, files map[string][]byte, modes map[string]int64) {
	t.Helper()
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	dirs := map[string]bool{}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if d := filepath.Dir(n); d != "." && !dirs[d] {
			dirs[d] = true
			if err := lw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
				t.Fatal(err)
			}
		}
		c := files[n]
		if target, ok := bytes.CutPrefix(c, []byte("->")); ok {
			if err := lw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeSymlink, Linkname: string(target), Mode: 0o777, ModTime: time.Unix(0, 0)}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		mode := int64(0o644)
		if m, ok := modes[n]; ok {
			mode = m
		}
		if err := lw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(c)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := lw.Write(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	layerSum := sha256.Sum256(layer.Bytes())
	diffID := "sha256:" + hex.EncodeToString(layerSum[:])
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      "1970-01-01T00:00:00Z",
		"config":       map[string]any{"Cmd": cmd, "Env": []string{"PATH=/bin"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{diffID}},
		"history":      []map[string]any{{"created": "1970-01-01T00:00:00Z", "created_by": "bainode payload test"}},
	})
	configSum := sha256.Sum256(config)
	configName := hex.EncodeToString(configSum[:]) + ".json"
	layerDir := hex.EncodeToString(layerSum[:])
	manifest, _ := json.Marshal([]map[string]any{{"Config": configName, "RepoTags": []string{ref}, "Layers": []string{layerDir + "/layer.tar"}}})

	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: layerDir + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	add(layerDir+"/layer.tar", layer.Bytes())
	add(configName, config)
	add("manifest.json", manifest) // last, as docker save writes it
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
