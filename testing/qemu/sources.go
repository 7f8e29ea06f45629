package qemu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The base is always Debian 12.
const suite = "bookworm"

// aptDir is the host's apt configuration. The mirrors come from there at run
// time, so no mirror host is written into the repository.
var aptDir = "/etc/apt"

// debianSuites are the suite names whose "-updates" and "-security" siblings
// follow Debian's layout; entries for them are rewritten to bookworm, so a
// host on another Debian release still supplies its mirrors.
var debianSuites = []string{"bookworm", "bullseye", "trixie", "forky", "sid", "unstable", "testing", "stable", "oldstable"}

// source is one apt source entry, in either on-disk format.
type source struct {
	URIs       []string
	Suites     []string
	Components []string
	SignedBy   string // a path, or an inline key in deb822's folded form
}

// hostSources returns the host's Debian archive entries as a deb822 file for
// bookworm, main component. Third-party repositories are left out: an entry
// needs a Debian suite, the main component and a "debian" or
// "debian-security" segment in its URI path (mirrors, proxies and snapshot
// archives all keep one).
func hostSources() ([]byte, error) {
	var all []source
	if b, err := os.ReadFile(filepath.Join(aptDir, "sources.list")); err == nil {
		all = append(all, parseOneLine(string(b))...)
	}
	lists, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*.list"))
	for _, p := range lists {
		if b, err := os.ReadFile(p); err == nil {
			all = append(all, parseOneLine(string(b))...)
		}
	}
	deb822, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*.sources"))
	for _, p := range deb822 {
		if b, err := os.ReadFile(p); err == nil {
			all = append(all, parseDeb822(string(b))...)
		}
	}

	var b strings.Builder
	for _, s := range all {
		suites := rewriteSuites(s.Suites)
		if len(suites) == 0 || !slices.Contains(s.Components, "main") || !slices.ContainsFunc(s.URIs, debianURI) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n",
			strings.Join(s.URIs, " "), strings.Join(suites, " "))
		if s.SignedBy != "" {
			fmt.Fprintf(&b, "Signed-By: %s\n", s.SignedBy)
		}
	}
	if b.Len() == 0 {
		return nil, errors.New("no Debian archive (main component) in the host's apt sources under " + aptDir)
	}
	return []byte(b.String()), nil
}

func debianURI(uri string) bool {
	_, path, ok := strings.Cut(uri, "://")
	if !ok {
		return false
	}
	for _, seg := range strings.Split(path, "/")[1:] {
		if seg == "debian" || seg == "debian-security" {
			return true
		}
	}
	return false
}

// rewriteSuites maps Debian suites to their bookworm names; it returns nil if
// any suite is not a Debian one. Backports are dropped.
func rewriteSuites(suites []string) []string {
	var out []string
	for _, s := range suites {
		base, variant, _ := strings.Cut(s, "-")
		if !slices.Contains(debianSuites, base) {
			return nil
		}
		switch variant {
		case "":
			out = append(out, suite)
		case "updates", "security":
			out = append(out, suite+"-"+variant)
		case "backports", "proposed-updates":
		default:
			return nil
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// parseOneLine reads the classic "deb [opts] uri suite component..." format.
func parseOneLine(text string) []source {
	var out []source
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		var s source
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			end := slices.IndexFunc(f, func(w string) bool { return strings.HasSuffix(w, "]") })
			if end < 0 {
				continue
			}
			for _, opt := range f[:end+1] {
				opt = strings.Trim(opt, "[]")
				if v, ok := strings.CutPrefix(opt, "signed-by="); ok {
					s.SignedBy = v
				}
			}
			f = f[end+1:]
		}
		if len(f) < 2 {
			continue
		}
		s.URIs, s.Suites, s.Components = f[:1], f[1:2], f[2:]
		out = append(out, s)
	}
	return out
}

// parseDeb822 reads ".sources" stanzas, keeping enabled "deb" ones.
func parseDeb822(text string) []source {
	var out []source
	for _, stanza := range splitStanzas(text) {
		if strings.EqualFold(stanza["enabled"], "no") ||
			!slices.Contains(strings.Fields(stanza["types"]), "deb") {
			continue
		}
		out = append(out, source{
			URIs:       strings.Fields(stanza["uris"]),
			Suites:     strings.Fields(stanza["suites"]),
			Components: strings.Fields(stanza["components"]),
			SignedBy:   stanza["signed-by"],
		})
	}
	return out
}

// splitStanzas parses deb822 paragraphs into lower-cased field maps.
// Continuation lines (leading space) stay in the value, folded as in the
// source, so an inline Signed-By key survives.
func splitStanzas(text string) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	last := ""
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur, last = map[string]string{}, ""
	}
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				cur[last] += "\n" + line
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			cur[last] = strings.TrimSpace(v)
		}
	}
	flush()
	return out
}
