package verify

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// shellWords splits a line of bash into words as far as this test needs:
// quotes and $( ) nest, whitespace outside them separates words.
func shellWords(line string) []string {
	var (
		words []string
		cur   strings.Builder
		depth int  // $( ) nesting
		quote byte // ' or " at depth 0
		any   bool
	)
	flush := func() {
		if any {
			words = append(words, cur.String())
		}
		cur.Reset()
		any = false
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '\'' && depth == 0:
			if c == '\'' {
				quote = 0
			}
		case c == '\\' && i+1 < len(line):
			cur.WriteByte(c)
			i++
			c = line[i]
		case c == '$' && i+1 < len(line) && line[i+1] == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '"':
			if quote == '"' {
				quote = 0
			} else if quote == 0 {
				quote = '"'
			}
		case c == '\'' && quote == 0:
			quote = '\''
		case c == '#' && quote == 0 && !any:
			flush()
			return words // a comment
		case (c == ' ' || c == '\t' || c == ';') && quote == 0:
			flush()
			continue
		}
		cur.WriteByte(c)
		any = true
	}
	flush()
	return words
}

var expansion = regexp.MustCompile(`\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// scriptIDs are the check ids the verifier reports: the ID argument of
// every pass, fail, skip and verdict call, a shell expansion in it as "*".
func scriptIDs(script string) []string {
	script = strings.ReplaceAll(script, "\\\n", " ")
	var ids []string
	for _, line := range strings.Split(script, "\n") {
		w := shellWords(line)
		for i, word := range w {
			at := map[string]int{"pass": 1, "fail": 1, "skip": 1, "verdict": 2}[word]
			if at == 0 || i+at >= len(w) || (i > 0 && !slices.Contains([]string{"then", "else", "do", "&&", "||", "{"}, w[i-1])) {
				continue
			}
			id := expansion.ReplaceAllString(strings.Trim(w[i+at], `"'`), "*")
			if regexp.MustCompile(`^[a-z][a-z0-9_]*(\.|$)`).MatchString(id) && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// docIDs are the ids in docs/cloud-init.md's check-id table, "<x>" as "*".
func docIDs(t *testing.T, doc string) []string {
	t.Helper()
	_, table, ok := strings.Cut(doc, "Each check has a stable id:")
	if !ok {
		t.Fatal("docs/cloud-init.md: no check-id table after \"Each check has a stable id:\"")
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimLeft(table, "\n"), "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cells[2], -1) {
			ids = append(ids, regexp.MustCompile(`<[^>]+>`).ReplaceAllString(m[1], "*"))
		}
	}
	if len(ids) == 0 {
		t.Fatal("docs/cloud-init.md: the check-id table lists no ids")
	}
	return ids
}

// covers says whether pattern a ("*" for any text) matches b, or b a.
func covers(a, b string) bool {
	glob := func(p string) *regexp.Regexp {
		return regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, ".+") + "$")
	}
	return glob(a).MatchString(b) || glob(b).MatchString(a)
}

func TestShellWords(t *testing.T) {
	got := shellWords(`verdict "$([[ $s == "done" && $RC == 0 ]] && echo 1)" cloudinit.status "done, exit 0" 'a b' # x`)
	want := []string{`verdict`, `"$([[ $s == "done" && $RC == 0 ]] && echo 1)"`, `cloudinit.status`, `"done, exit 0"`, `'a b'`}
	if !slices.Equal(got, want) {
		t.Errorf("shellWords:\n got %q\nwant %q", got, want)
	}
}

// The docs' check-id table and the verifier's ids are the same set: an id
// added, renamed or dropped on one side fails here.
func TestDocsCheckIDs(t *testing.T) {
	script, err := os.ReadFile(scriptPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/cloud-init.md")
	if err != nil {
		t.Fatal(err)
	}
	ids, docs := scriptIDs(string(script)), docIDs(t, string(doc))
	if len(ids) < 20 {
		t.Fatalf("found only %d ids in the verifier: %v", len(ids), ids)
	}
	for _, id := range ids {
		if !slices.ContainsFunc(docs, func(d string) bool { return covers(d, id) }) {
			t.Errorf("the verifier reports %s; docs/cloud-init.md's check-id table does not list it", id)
		}
	}
	for _, d := range docs {
		if !slices.ContainsFunc(ids, func(id string) bool { return covers(d, id) }) {
			t.Errorf("docs/cloud-init.md lists %s; the verifier reports no such id", d)
		}
	}
}

// The docs' report-format table is verify.Formats, row for row.
func TestDocsReportFormats(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cloud-init.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "| format | what |\n|---|---|\n")
	if !ok {
		t.Fatal("docs/cloud-init.md: no report-format table (| format | what |)")
	}
	var got, want []string
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		got = append(got, line)
	}
	for _, f := range Formats {
		want = append(want, "| `"+f.Name+"` | "+f.Usage+" |")
	}
	if !slices.Equal(got, want) {
		t.Errorf("docs/cloud-init.md's report formats:\n%s\nverify.Formats:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestFormats(t *testing.T) {
	r := Report{Version: 1, Host: "h", Checks: []Check{{ID: "user.uid", Status: StatusPass, Expected: "1100", Actual: "1100"},
		{ID: "docker.active", Status: StatusFail, Expected: "active", Actual: "inactive", Detail: "d"}}}
	runs := []Run{{Name: "h.boot1", Report: r}, {Name: "h.boot2", Report: r}}
	for _, f := range Formats {
		var b strings.Builder
		if err := f.Write(&b, runs); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if !strings.Contains(b.String(), "docker.active") {
			t.Errorf("%s: no docker.active in\n%s", f.Name, b.String())
		}
	}
	var b strings.Builder
	if err := WriteJUnitRuns(&b, runs); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "<testsuite "); n != 2 || !strings.Contains(b.String(), `<testsuites name="bainode-verify" tests="4" failures="2"`) {
		t.Errorf("two boots: %d testsuites, totals wrong?\n%s", n, b.String())
	}
	b.Reset()
	lines, _ := FormatNamed("lines")
	lines.Write(&b, runs)
	if !strings.Contains(b.String(), "boot 2: FAIL docker.active  (expected \"active\", got \"inactive\") d\n") {
		t.Errorf("lines:\n%s", b.String())
	}
	if _, err := FormatNamed("xml"); err == nil || !strings.Contains(err.Error(), "table, json, junit, lines") {
		t.Errorf("FormatNamed(xml): %v", err)
	}
}
