package spec

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one error in a site file, pointed at by file, line, column and
// the field's path in the spec (nodes[2].ip).
type Problem struct {
	File   string
	Line   int
	Column int
	Path   string
	Msg    string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	}
	b.WriteString(": ")
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
}

func (r *report) add(pos position, path, format string, a ...any) {
	p := Problem{File: r.file, Line: pos.line, Column: pos.col, Path: path, Msg: fmt.Sprintf(format, a...)}
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

func (r *report) err() error {
	if len(r.problems) == 0 {
		return nil
	}
	ps := append([]Problem(nil), r.problems...)
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Column < ps[j].Column
	})
	return &Error{Problems: ps}
}

type position struct{ line, col int }
