package cloudinit_test

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/templates"
	"github.com/lablup/bainode/testing/cloudinit"
)

// targetTrees maps each target to the trees of the cloud-init packages it
// ships (templates/targets.yaml), failing when a tree is missing.
func targetTrees(t *testing.T, trees []*cloudinit.Tree) map[string][]*cloudinit.Tree {
	t.Helper()
	targets, err := render.LoadTargets(templates.FS)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]*cloudinit.Tree{}
	for name, tg := range targets {
		for _, v := range tg.CloudInit {
			tr := cloudinit.Lookup(trees, v)
			if tr == nil {
				t.Fatalf("targets.yaml: %s ships cloud-init %s; no tree has it", name, v)
			}
			m[name] = append(m[name], tr)
		}
	}
	return m
}

// newest is the tree with the highest packaged version.
func newest(trees []*cloudinit.Tree) *cloudinit.Tree {
	var best *cloudinit.Tree
	for _, tr := range trees {
		if best == nil || versionLess(best, tr) {
			best = tr
		}
	}
	return best
}

var deprecation = regexp.MustCompile(`(?i)deprecat`)

// Every rendered user-data passes the schema of every cloud-init its target
// ships, and of the newest one (20.1's schema ignores users and write_files),
// with no deprecation remarks: from 23.4 one degrades `cloud-init status`.
func TestSchemaMatrix(t *testing.T) {
	trees := cloudinit.Trees(t)
	byTarget := targetTrees(t, trees)
	nodes := renderAll(t)
	top := newest(trees)
	for _, tr := range trees {
		var files []string
		for _, n := range nodes {
			if tr == top || slices.Contains(byTarget[n.target], tr) {
				files = append(files, filepath.Join(n.dir, "user-data"))
			}
		}
		if len(files) == 0 {
			continue
		}
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			res, err := tr.Schema(t.Context(), files...)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				name := filepath.Base(filepath.Dir(r.File))
				if r.Exit != 0 || !strings.Contains(r.Out, "Valid") {
					t.Errorf("%s: cloud-init %s schema: exit %d\n%s", name, tr.Package, r.Exit, r.Out)
				}
				if deprecation.MatchString(r.Out) {
					t.Errorf("%s: cloud-init %s schema reports a deprecation:\n%s", name, tr.Package, r.Out)
				}
			}
			t.Logf("cloud-init %s: %d files", tr.Package, len(res))
		})
	}
}

func versionLess(a, b *cloudinit.Tree) bool {
	as, bs := strings.Split(a.Version, "."), strings.Split(b.Version, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if len(as[i]) != len(bs[i]) {
			return len(as[i]) < len(bs[i])
		}
		if as[i] != bs[i] {
			return as[i] < bs[i]
		}
	}
	if len(as) != len(bs) {
		return len(as) < len(bs)
	}
	return a.Package < b.Package
}
