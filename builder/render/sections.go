package render

import (
	"bytes"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/lablup/bainode/overlays"
)

// A script's sections are lines between "#@if KEY" (or "#@if KEY=VALUE")
// and "#@end KEY". KEY names a variable of the env file the script reads
// (verify.env for the verifier, provision.env for the provisioning script).
// render keeps a section only when that file turns it on: KEY non-empty and
// not 0, or equal to VALUE. A node then carries no code for parts it does
// not have, which keeps user-data small; the code around a section must
// still do the right thing for "off" (report skips, log "turned off").
// Sections nest; the markers are comments, so the script runs as is.
var sectionMark = regexp.MustCompile(`^[ \t]*#@(if|end)[ \t]+([A-Z_][A-Z0-9_]*)(?:=(\S*))?[ \t]*$`)

type section struct {
	key, value string // value "" means "on"
	begin, end int    // line indexes of the markers
}

// parseSections finds a script's sections and checks that they pair up.
func parseSections(name string, src []byte) ([]section, error) {
	var out []section
	var open []int // indexes into out
	for i, l := range strings.Split(string(src), "\n") {
		if !strings.Contains(l, "#@") {
			continue
		}
		m := sectionMark.FindStringSubmatch(l)
		if m == nil {
			if strings.HasPrefix(strings.TrimLeft(l, " \t"), "#@") {
				return nil, fmt.Errorf("%s:%d: a section marker is \"#@if KEY\", \"#@if KEY=VALUE\" or \"#@end KEY\"", name, i+1)
			}
			continue
		}
		switch m[1] {
		case "if":
			open = append(open, len(out))
			out = append(out, section{key: m[2], value: m[3], begin: i, end: -1})
		case "end":
			if m[3] != "" {
				return nil, fmt.Errorf("%s:%d: #@end takes a KEY only", name, i+1)
			}
			if len(open) == 0 || out[open[len(open)-1]].key != m[2] {
				return nil, fmt.Errorf("%s:%d: #@end %s closes no open #@if %s", name, i+1, m[2], m[2])
			}
			out[open[len(open)-1]].end = i
			open = open[:len(open)-1]
		}
	}
	if len(open) > 0 {
		s := out[open[len(open)-1]]
		return nil, fmt.Errorf("%s:%d: #@if %s has no #@end %s", name, s.begin+1, s.key, s.key)
	}
	return out, nil
}

// cutSections drops the sections env turns off. env holds the env file's
// values; a key it lacks is an error, since renderer and script disagree.
func cutSections(name string, src []byte, secs []section, env map[string]string) ([]byte, error) {
	if len(secs) == 0 {
		return src, nil
	}
	lines := bytes.SplitAfter(src, []byte("\n"))
	drop := make([]bool, len(lines))
	for _, s := range secs {
		v, ok := env[s.key]
		if !ok {
			return nil, fmt.Errorf("%s:%d: section %s: the env file has no %s", name, s.begin+1, s.key, s.key)
		}
		keep := v != "" && v != "0"
		if s.value != "" {
			keep = v == s.value
		}
		if !keep {
			for i := s.begin; i <= s.end; i++ {
				drop[i] = true
			}
		}
	}
	var out bytes.Buffer
	for i, l := range lines {
		if !drop[i] {
			out.Write(l)
		}
	}
	return out.Bytes(), nil
}

// envValues reads the KEY=VALUE lines of an env file render wrote: values
// are bare words or single-quoted with '\” for a quote (see shStr).
func envValues(content string) map[string]string {
	env := map[string]string{}
	for _, l := range strings.Split(content, "\n") {
		k, v, ok := strings.Cut(l, "=")
		if !ok || strings.HasPrefix(k, "#") || strings.ContainsAny(k, " \t") {
			continue
		}
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, `'`)
		}
		env[k] = v
	}
	return env
}

// Script is overlay script src (such as "verify/bainode-verify") as a node
// whose env file holds env receives it: sections cut, comments stripped.
func Script(src string, env map[string]string) ([]byte, error) {
	b, err := fs.ReadFile(overlays.FS, src)
	if err != nil {
		return nil, err
	}
	secs, err := parseSections("overlays/"+src, b)
	if err != nil {
		return nil, err
	}
	if b, err = cutSections("overlays/"+src, b, secs, env); err != nil {
		return nil, err
	}
	return stripShell(b), nil
}
