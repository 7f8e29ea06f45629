package spec_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/templates"
)

// FuzzParse: no input may panic, and every rejection is a *spec.Error whose
// problems all carry a message.
func FuzzParse(f *testing.F) {
	ex, _ := fs.Glob(templates.FS, "examples/*.yaml")
	for _, n := range append(ex, "site.yaml") {
		b, _ := fs.ReadFile(templates.FS, n)
		f.Add(b)
	}
	bad, _ := filepath.Glob("testdata/bad/*.yaml")
	for _, p := range bad {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := spec.Parse("fuzz.yaml", data)
		if err == nil {
			if s == nil || len(s.Nodes) == 0 {
				t.Fatalf("accepted a site with no nodes")
			}
			return
		}
		var se *spec.Error
		if !errors.As(err, &se) {
			t.Fatalf("got %T %v, want *spec.Error", err, err)
		}
		for _, p := range se.Problems {
			if p.Msg == "" {
				t.Fatalf("a problem without a message: %+v", p)
			}
		}
	})
}
