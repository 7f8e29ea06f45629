package plan_test

import (
	"bytes"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/plan"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/templates"

	"github.com/lablup/bainode/builder/internal/golden"
)

func examples(t *testing.T) []string {
	des, err := fs.ReadDir(templates.FS, "examples")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, strings.TrimSuffix(de.Name(), ".yaml"))
	}
	return out
}

// site parses src, with every node on target when target is set (as
// bainode's --target does).
func site(t *testing.T, name string, src []byte, target string) *spec.Site {
	t.Helper()
	s, err := spec.Parse(name, src)
	if err != nil {
		t.Fatal(err)
	}
	if target != "" {
		for i := range s.Nodes {
			s.Nodes[i].Target = target
		}
	}
	return s
}

func example(t *testing.T, name, target string) *spec.Site {
	t.Helper()
	b, err := fs.ReadFile(templates.FS, "examples/"+name+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	return site(t, name+".yaml", b, target)
}

func plans(t *testing.T, s *spec.Site) []*plan.Plan {
	t.Helper()
	var ps []*plan.Plan
	for i := range s.Nodes {
		p, err := plan.For(&s.Nodes[i], plan.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

func goldenFile(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got)
}

// What bainode plan prints, for every example on every target, and as JSON
// for every example on its own target.
func TestGolden(t *testing.T) {
	for _, ex := range examples(t) {
		for _, target := range spec.Targets {
			var b bytes.Buffer
			if err := plan.WriteText(&b, plans(t, example(t, ex, target))); err != nil {
				t.Fatal(err)
			}
			goldenFile(t, ex+"."+target+".txt", b.Bytes())
		}
		var b bytes.Buffer
		if err := plan.WriteJSON(&b, plans(t, example(t, ex, ""))); err != nil {
			t.Fatal(err)
		}
		goldenFile(t, ex+".json", b.Bytes())
	}
}
