package render

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/internal/testenv"
	"github.com/lablup/bainode/overlays"
	"github.com/lablup/bainode/templates"
)

func TestSectionErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"a\n#@if GPU\nb\n", "s:2: #@if GPU has no #@end GPU"},
		{"a\n#@end GPU\n", "s:2: #@end GPU closes no open #@if GPU"},
		{"#@if GPU\n#@if DOCKER\n#@end GPU\n#@end DOCKER\n", "s:3: #@end GPU closes no open #@if GPU"},
		{"\t#@iff GPU\n", `s:1: a section marker is "#@if KEY", "#@if KEY=VALUE" or "#@end KEY"`},
		{"#@if GPU\n#@end GPU=1\n", "s:2: #@end takes a KEY only"},
	} {
		_, err := parseSections("s", []byte(c.src))
		if err == nil || err.Error() != c.want {
			t.Errorf("%q: got %v, want %s", c.src, err, c.want)
		}
	}
	secs, err := parseSections("s", []byte("a\n#@if NOPE\nb\n#@end NOPE\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cutSections("s", []byte("a\n#@if NOPE\nb\n#@end NOPE\n"), secs, map[string]string{"GPU": "1"}); err == nil || err.Error() != "s:2: section NOPE: the env file has no NOPE" {
		t.Errorf("unknown key: %v", err)
	}
}

func TestCutSections(t *testing.T) {
	src := "a\n#@if GPU\ng\n\t#@if DOCKER\nd\n\t#@end DOCKER\n#@end GPU\n#@if MODE=payload\np\n#@end MODE\nz\n"
	secs, err := parseSections("s", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"GPU": "1", "DOCKER": "1", "MODE": "payload"}, src},
		{map[string]string{"GPU": "1", "DOCKER": "0", "MODE": "online"}, "a\n#@if GPU\ng\n#@end GPU\nz\n"},
		{map[string]string{"GPU": "", "DOCKER": "1", "MODE": "payload"}, "a\n#@if MODE=payload\np\n#@end MODE\nz\n"},
	} {
		got, err := cutSections("s", []byte(src), secs, c.env)
		if err != nil || string(got) != c.want {
			t.Errorf("%v: got %q, %v; want %q", c.env, got, err, c.want)
		}
	}
	if got := envValues("# c\nA='x'\\''y'\nB=1\nC=''\n"); got["A"] != "x'y" || got["B"] != "1" || got["C"] != "" || len(got) != 3 {
		t.Errorf("envValues: %q", got)
	}
}

// Each section of a script names a key its env file carries, and every
// way of turning sections on and off leaves a script bash can parse.
func TestScriptSectionsContract(t *testing.T) {
	sc := testenv.Need(t, "shellcheck")
	keyLine := regexp.MustCompile(`^([A-Z_][A-Z0-9_]*)=`)
	for _, sf := range staticFiles {
		src, err := fs.ReadFile(overlays.FS, sf.src)
		if err != nil {
			t.Fatal(err)
		}
		secs, err := parseSections(sf.src, src)
		if err != nil {
			t.Fatal(err)
		}
		if sf.env == "" {
			if len(secs) > 0 {
				t.Errorf("%s has sections but no env file", sf.src)
			}
			continue
		}
		tmpl, err := fs.ReadFile(templates.FS, "cloud-init/"+filepath.Base(sf.env)+".tmpl")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, l := range strings.Split(string(tmpl), "\n") {
			if m := keyLine.FindStringSubmatch(l); m != nil {
				keys = append(keys, m[1])
			}
		}
		var distinct []string
		for _, s := range secs {
			if !slices.Contains(keys, s.key) {
				t.Errorf("%s:%d: section %s: %s does not write %s", sf.src, s.begin+1, s.key, sf.env, s.key)
			}
			if !slices.Contains(distinct, s.key) {
				distinct = append(distinct, s.key)
			}
		}
		if len(distinct) == 0 {
			t.Errorf("%s: no sections; render would cut nothing", sf.src)
		}
		// Every combination, each key on (or its VALUE) and off.
		for mask := 0; mask < 1<<len(distinct); mask++ {
			env := map[string]string{}
			for i, k := range distinct {
				env[k] = "0"
				if mask&(1<<i) != 0 {
					env[k] = "1"
					for _, s := range secs {
						if s.key == k && s.value != "" {
							env[k] = s.value
						}
					}
				}
			}
			b, err := cutSections(sf.src, src, secs, env)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "s")
			if err := os.WriteFile(p, stripShell(b), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("bash", "-n", p).CombinedOutput(); err != nil {
				t.Errorf("%s with %v: bash -n: %v\n%s", sf.src, env, err, out)
			}
			if mask == 0 && len(b) >= len(src) {
				t.Errorf("%s: all sections off cuts nothing", sf.src)
			}
			// With everything cut, a part's locals go unused (SC2034);
			// anything else shellcheck finds is a real problem.
			if mask == 0 {
				if out, err := exec.Command(sc, "-x", "-e", "SC2034", p).CombinedOutput(); err != nil {
					t.Errorf("%s with every section off: shellcheck: %v\n%s", sf.src, err, out)
				}
			}
		}
	}
}
