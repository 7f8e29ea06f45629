package spec_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/templates"
)

// FuzzParse: no input may panic; every rejection is a *spec.Error whose
// problems all carry a message and a position; and an accepted site holds
// no control character in any string.
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
			if path, bad := controlIn(reflect.ValueOf(s), "site"); bad {
				t.Fatalf("accepted a control character in %s", path)
			}
			return
		}
		var se *spec.Error
		if !errors.As(err, &se) {
			t.Fatalf("got %T %v, want *spec.Error", err, err)
		}
		for _, p := range se.Problems {
			if p.Msg == "" || p.Line == 0 || p.Column == 0 {
				t.Fatalf("a problem without a message or a position: %+v", p)
			}
		}
	})
}

// controlIn finds a string holding a C0 or C1 control, DEL, U+2028 or U+2029
// anywhere in v.
func controlIn(v reflect.Value, path string) (string, bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "", false
		}
		return controlIn(v.Elem(), path)
	case reflect.String:
		bad := strings.ContainsFunc(v.String(), func(c rune) bool {
			return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029
		})
		return path, bad
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			if p, bad := controlIn(v.Field(i), path+"."+v.Type().Field(i).Name); bad {
				return p, true
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if p, bad := controlIn(v.Index(i), path); bad {
				return p, true
			}
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			if p, bad := controlIn(it.Key(), path); bad {
				return p, true
			}
			if p, bad := controlIn(it.Value(), path); bad {
				return p, true
			}
		}
	}
	return "", false
}
