package pxe

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// IDPlaceholder stands for the tree's ID in file contents until Seal knows
// it: URLs in kernel arguments name the tree they belong to.
const IDPlaceholder = "@BAINODE-TREE-ID@"

// Seal computes the tree's ID over its contents (with the placeholder in
// place, so the ID does not depend on itself) and then writes the ID into
// every in-memory file.
func (t *Tree) Seal(version string) (string, error) {
	id, err := t.ID(version)
	if err != nil {
		return "", err
	}
	for p, f := range t.Files {
		if f.Src == "" && bytes.Contains(f.Data, []byte(IDPlaceholder)) {
			f.Data = bytes.ReplaceAll(f.Data, []byte(IDPlaceholder), []byte(id))
			t.Files[p] = f
		}
	}
	return id, nil
}

// Current names the symlink to the newest tree: point the TFTP server at
// DIR/current. Older trees stay, so a machine half way through a boot
// keeps finding its files.
const Current = "current"

// Write puts the tree at dir/id, whole or not at all (it is built in a
// temp dir and renamed), then points dir/current at it. A tree with the
// same ID already there is kept as it is: the ID covers every byte.
func (t *Tree) Write(dir, id string) (string, error) {
	if !safePath(id) || id == Current || filepath.Base(id) != id {
		return "", fmt.Errorf("tree id %q", id)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	final := filepath.Join(dir, id)
	if _, err := os.Stat(final); errors.Is(err, os.ErrNotExist) {
		tmp, err := os.MkdirTemp(dir, ".tmp-"+id+"-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(tmp) // a no-op after the rename
		for _, p := range t.Paths() {
			if err := writeOne(filepath.Join(tmp, filepath.FromSlash(p)), t.Files[p]); err != nil {
				return "", fmt.Errorf("%s: %w", p, err)
			}
		}
		if err := os.Chmod(tmp, 0o755); err != nil {
			return "", err
		}
		if err := os.Rename(tmp, final); err != nil {
			return "", err
		}
	} else if err != nil {
		return "", err
	}
	link := filepath.Join(dir, ".tmp-"+Current)
	os.Remove(link)
	if err := os.Symlink(id, link); err != nil {
		return "", err
	}
	return final, os.Rename(link, filepath.Join(dir, Current))
}

func writeOne(path string, f File) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// Created with its final mode: a secret is never readable by others.
	out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, f.Mode)
	if err != nil {
		return err
	}
	if f.Src != "" {
		// A hard link would let a later edit of the source change a tree
		// whose ID promises its bytes: copy.
		in, err := os.Open(f.Src)
		if err != nil {
			out.Close()
			return err
		}
		_, err = io.Copy(out, in)
		in.Close()
		if err != nil {
			out.Close()
			return err
		}
	} else if _, err := out.Write(f.Data); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
