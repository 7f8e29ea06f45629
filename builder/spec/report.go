package spec

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ProblemsMediaType is the media type of bainoded's structured rejection
// ({"error": text, "problems": [Problem...]}). bainoded sends it only to
// clients that list it in Accept: older clients print a 400's body as it
// is, so they get plain text.
const ProblemsMediaType = "application/vnd.bainode.problems+json"

// Problem is one error in a site file, pointed at by file, line, column and
// the field's path in the spec (nodes[2].ip). Its JSON is what bainoded
// answers a rejected site with.
type Problem struct {
	File     string   `json:"file,omitempty"`
	Line     int      `json:"line,omitempty"`
	Column   int      `json:"column,omitempty"`
	Path     string   `json:"field,omitempty"`
	Msg      string   `json:"message"`
	Severity Severity `json:"severity"`
}

// Severity tells an error, which stops the site from loading, from a
// warning, which does not (unless the caller is strict).
type Severity int

const (
	SeverityError Severity = iota
	SeverityWarning
)

func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// MarshalText writes "error" or "warning".
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads "error" or "warning".
func (s *Severity) UnmarshalText(b []byte) error {
	switch string(b) {
	case "error":
		*s = SeverityError
	case "warning":
		*s = SeverityWarning
	default:
		return fmt.Errorf("severity %q is neither error nor warning", b)
	}
	return nil
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	}
	b.WriteString(": ")
	if p.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is every problem found in one site file. Loading collects them all
// before it reports, so one run shows the operator everything to fix.
type Error struct{ Problems []Problem }

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// report gathers problems, dropping repeats: a site-wide mistake is seen once
// per node when the layers are decoded for each node.
type report struct {
	file     string
	seen     map[string]bool
	problems []Problem
	// tainted are the positions and paths of values that hold a control
	// character: that one problem says enough about them.
	tainted map[any]bool
}

// taint reports a value that holds a control character, and keeps the
// checks that follow from repeating it in their own words.
func (r *report) taint(pos position, path, format string, a ...any) {
	r.add(pos, path, format, a...)
	if r.tainted == nil {
		r.tainted = map[any]bool{}
	}
	r.tainted[pos], r.tainted[path] = true, true
}

func (r *report) add(pos position, path, format string, a ...any) {
	r.put(Problem{File: r.file, Line: pos.line, Column: pos.col, Path: path, Msg: fmt.Sprintf(format, a...)})
}

func (r *report) warn(pos position, path, format string, a ...any) {
	r.put(Problem{File: r.file, Line: pos.line, Column: pos.col, Path: path, Msg: fmt.Sprintf(format, a...), Severity: SeverityWarning})
}

func (r *report) put(p Problem) {
	if r.tainted[position{p.Line, p.Column}] || r.tainted[p.Path] {
		return
	}
	p.Path = printable(p.Path)
	key := p.String()
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	if r.seen[key] {
		return
	}
	r.seen[key] = true
	r.problems = append(r.problems, p)
}

// printable escapes the control characters of a path: a key may hold one.
func printable(s string) string {
	if _, bad := badRune(s); !bad {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// err returns every problem, warnings included, when there is an error.
func (r *report) err() error {
	if !slices.ContainsFunc(r.problems, func(p Problem) bool { return p.Severity == SeverityError }) {
		return nil
	}
	return &Error{Problems: r.sorted()}
}

// warnings returns the warnings, when there is no error.
func (r *report) warnings() []Problem { return r.sorted() }

func (r *report) sorted() []Problem {
	ps := append([]Problem(nil), r.problems...)
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Column < ps[j].Column
	})
	return ps
}

type position struct{ line, col int }
