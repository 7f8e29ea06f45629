package cpio

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func archive(t *testing.T, files map[string]string) []byte {
	t.Helper()
	a := NewArchive()
	for n, d := range files {
		if err := a.File(n, 0o644, []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if _, err := a.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// An initramfs as distributions write it: an uncompressed archive, zero
// padding of any length, then a gzip part whose archive is padded too.
func TestWalkInitramfs(t *testing.T) {
	for _, pad := range []int{0, 3, 4, 7, 512} {
		var img bytes.Buffer
		img.Write(archive(t, map[string]string{"kernel/x86/microcode/a.bin": "ucode"}))
		img.Write(make([]byte, pad))
		zw := gzip.NewWriter(&img)
		zw.Write(archive(t, map[string]string{"init": "#!/bin/sh\n", "lib/modules/m.ko": "mod"}))
		zw.Write(make([]byte, pad+1))
		zw.Close()
		p := filepath.Join(t.TempDir(), "initrd.img")
		if err := os.WriteFile(p, img.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		err := WalkInitramfs(p, func(e Entry) error {
			if e.Mode&ModeType == ModeFile {
				got[e.Name] = string(e.Data)
			}
			return nil
		})
		if err != nil {
			t.Errorf("pad %d: %v", pad, err)
		}
		for n, want := range map[string]string{"kernel/x86/microcode/a.bin": "ucode", "init": "#!/bin/sh\n", "lib/modules/m.ko": "mod"} {
			if got[n] != want {
				t.Errorf("pad %d: %s = %q, want %q", pad, n, got[n], want)
			}
		}
	}
}

// Written archives are reproducible, carry parent directories, and read
// back as written.
func TestRoundTrip(t *testing.T) {
	files := map[string]string{"etc/bainode/deploy.json": "{}\n", "bin/busybox": "bb"}
	a, b := archive(t, files), archive(t, files)
	if !bytes.Equal(a, b) {
		t.Fatal("two writes of the same files differ")
	}
	var names []string
	err := ReadArchive(bytes.NewReader(a), func(e Entry) error {
		names = append(names, e.Name)
		if d, ok := files[e.Name]; ok && string(e.Data) != d {
			t.Errorf("%s: %q", e.Name, e.Data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bin", "bin/busybox", "etc", "etc/bainode", "etc/bainode/deploy.json"}
	if len(names) != len(want) {
		t.Fatalf("members %q, want %q", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Errorf("members %q, want %q", names, want)
		}
	}
	if err := ReadArchive(bytes.NewReader(nil), func(Entry) error { return nil }); err != io.EOF {
		t.Errorf("empty input: %v, want io.EOF", err)
	}
	if err := ReadArchive(bytes.NewReader(a[:len(a)-40]), func(Entry) error { return nil }); err == nil {
		t.Error("a cut archive reads without error")
	}
}
