package cloudinit_test

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/plan"
	"github.com/lablup/bainode/testing/cloudinit"
)

// The versions table in docs/cloud-init.md is what targets.yaml and the
// trees say: one row per shipped package, each behaviour derived here.
func TestDocVersionTable(t *testing.T) {
	trees := cloudinit.Trees(t)
	targets, err := plan.Targets()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for name, tg := range targets {
		for _, v := range tg.CloudInit {
			tr := cloudinit.Lookup(trees, v)
			if tr == nil {
				t.Fatalf("targets.yaml: %s ships cloud-init %s; no tree has it", name, v)
			}
			want = append(want, docRow(t, name, v, tg, tr))
		}
	}
	doc := filepath.Join("..", "..", "docs", "cloud-init.md")
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok1 := strings.Cut(string(b), "<!-- versions-table -->\n")
	table, _, ok2 := strings.Cut(rest, "<!-- /versions-table -->")
	if !ok1 || !ok2 {
		t.Fatalf("%s: no <!-- versions-table --> block", doc)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(table), "\n")[2:] {
		got = append(got, l)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: the versions table drifted from targets.yaml and the trees; want rows:\n%s", doc, strings.Join(want, "\n"))
	}
}

func docRow(t *testing.T, target, v string, tg plan.Target, tr *cloudinit.Tree) string {
	at := func(min string) bool { return !cloudinit.VersionLess(tr.Version, min) }
	intUID := "ignored"
	if at("22.1") {
		intUID = "honoured"
	}
	strUID := "honoured"
	switch {
	case at("23.4"):
		strUID = "degrades"
	case at("22.4"):
		strUID = "deprecated"
	}
	user := "users module, integer uid"
	if tg.UserInBootcmd() {
		user = "bootcmd useradd"
	}
	exit := "no degraded state"
	if at("23.4") {
		exit = "2"
		if tr.Dir != "" {
			series, err := os.ReadFile(filepath.Join(tr.Dir, "debian", "patches", "series"))
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if strings.Contains(string(series), "status-retain-recoverable-error-exit-code.patch") {
				exit = "0 (Ubuntu patch)"
			}
		}
	}
	return "| " + strings.Join([]string{target, v, intUID, strUID, user, exit}, " | ") + " |"
}
