package fetch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Installed is what the target image already has: package name -> version
// ("" when unknown, which satisfies any version constraint).
type Installed map[string]string

// ParseManifest reads an Ubuntu cloud image "<image>.manifest": lines of
// "package<TAB>version", package possibly with an ":arch" suffix. Snap lines
// ("snap:lxd ...") are not packages and are skipped.
func ParseManifest(b []byte) (Installed, error) {
	inst := Installed{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "snap:") || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) > 2 {
			return nil, fmt.Errorf("manifest line %d: want \"package<TAB>version\", got %q", n, sc.Text())
		}
		name, _, _ := strings.Cut(f[0], ":")
		v := ""
		if len(f) == 2 {
			v = f[1]
		}
		inst[name] = v
	}
	return inst, sc.Err()
}

// relation is one alternative of a dependency: "name (op version)".
type relation struct{ name, op, version string }

func (r relation) String() string {
	if r.op == "" {
		return r.name
	}
	return fmt.Sprintf("%s (%s %s)", r.name, r.op, r.version)
}

// parseDepends splits "a (>= 1) | b, c:any" into clauses of alternatives.
func parseDepends(s string) ([][]relation, error) {
	var out [][]relation
	for _, clause := range strings.Split(s, ",") {
		if strings.TrimSpace(clause) == "" {
			continue
		}
		var alts []relation
		for _, alt := range strings.Split(clause, "|") {
			alt = strings.Join(strings.Fields(alt), " ")
			if i := strings.IndexAny(alt, "[<"); i >= 0 && !strings.Contains(alt[:i], "(") {
				alt = strings.TrimSpace(alt[:i]) // arch or build-profile restrictions
			}
			var r relation
			name, rest, _ := strings.Cut(alt, "(")
			r.name, _, _ = strings.Cut(strings.TrimSpace(name), ":") // :any, :amd64
			if rest != "" {
				rest = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), ")"))
				i := strings.IndexFunc(rest, func(c rune) bool { return !strings.ContainsRune("<=>", c) })
				if i <= 0 {
					return nil, fmt.Errorf("bad version constraint in %q", alt)
				}
				r.op, r.version = rest[:i], strings.TrimSpace(rest[i:])
			}
			if r.name == "" {
				return nil, fmt.Errorf("empty package name in %q", clause)
			}
			alts = append(alts, r)
		}
		out = append(out, alts)
	}
	return out, nil
}

// AptIndex holds the packages of one or more sources for resolving.
type AptIndex struct {
	byName   map[string][]AptPackage // newest first
	provides map[string][]provision
}

type provision struct {
	version string // "" for an unversioned Provides
	pkg     AptPackage
}

// NewAptIndex indexes packages (from one or more AptSource.Packages calls).
func NewAptIndex(pkgs ...[]AptPackage) *AptIndex {
	ix := &AptIndex{byName: map[string][]AptPackage{}, provides: map[string][]provision{}}
	for _, ps := range pkgs {
		for _, p := range ps {
			ix.byName[p.Package] = append(ix.byName[p.Package], p)
			rels, _ := parseDepends(p.Provides)
			for _, alts := range rels {
				for _, r := range alts {
					ix.provides[r.name] = append(ix.provides[r.name], provision{version: r.version, pkg: p})
				}
			}
		}
	}
	for _, ps := range ix.byName {
		sort.SliceStable(ps, func(i, j int) bool { return CompareDebVersions(ps[i].Version, ps[j].Version) > 0 })
	}
	return ix
}

// Resolution is the outcome of Resolve.
type Resolution struct {
	Packages  []AptPackage // to fetch, sorted by name
	Satisfied []string     // requested or needed, but already installed
	Missing   []string     // dependencies found neither installed nor in the index
}

// Artifacts are the resolved packages as pinned artifacts.
func (r *Resolution) Artifacts() []Artifact {
	out := make([]Artifact, len(r.Packages))
	for i, p := range r.Packages {
		out[i] = p.Artifact()
	}
	return out
}

// Resolve picks packages for the requests ("name" or "name=version") and,
// recursively, their Pre-Depends and Depends. It takes the newest version
// that meets the constraint at hand unless a request pins one (there is no
// backtracking, as in apt's own first pass), uses the
// first satisfiable alternative of "a | b", and skips what installed already
// satisfies. A dependency nobody provides is listed in Missing (the Ubuntu
// archive is not indexed here); an unknown request or a version conflict is
// an error.
func (ix *AptIndex) Resolve(requests []string, installed Installed) (*Resolution, error) {
	r := &resolver{ix: ix, inst: installed, selected: map[string]AptPackage{}, satisfied: map[string]bool{}, missing: map[string]bool{}}
	for _, req := range requests {
		name, ver, pinned := strings.Cut(strings.TrimSpace(req), "=")
		if iv, ok := installed[name]; ok && (!pinned || iv == ver) {
			r.satisfied[name] = true
			continue
		}
		var cand []AptPackage
		for _, p := range ix.byName[name] {
			if !pinned || p.Version == ver {
				cand = append(cand, p)
			}
		}
		if len(cand) == 0 {
			if pinned {
				return nil, fmt.Errorf("apt: no %s version %s in the indexes", name, ver)
			}
			return nil, fmt.Errorf("apt: no package %s in the indexes", name)
		}
		if s, ok := r.selected[name]; ok && s.Version != cand[0].Version {
			return nil, fmt.Errorf("apt: %s requested as %s and as %s", name, s.Version, cand[0].Version)
		}
		r.add(cand[0])
	}
	if len(r.errs) > 0 {
		return nil, errors.Join(r.errs...)
	}
	res := &Resolution{}
	for _, p := range r.selected {
		res.Packages = append(res.Packages, p)
	}
	sort.Slice(res.Packages, func(i, j int) bool { return res.Packages[i].Package < res.Packages[j].Package })
	for n := range r.satisfied {
		res.Satisfied = append(res.Satisfied, n)
	}
	for n := range r.missing {
		res.Missing = append(res.Missing, n)
	}
	sort.Strings(res.Satisfied)
	sort.Strings(res.Missing)
	return res, nil
}

type resolver struct {
	ix        *AptIndex
	inst      Installed
	selected  map[string]AptPackage
	satisfied map[string]bool
	missing   map[string]bool
	errs      []error
}

func (r *resolver) add(p AptPackage) {
	if _, done := r.selected[p.Package]; done {
		return
	}
	r.selected[p.Package] = p
	deps, err := parseDepends(joinNonEmpty(p.PreDepends, p.Depends))
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("apt: %s: %w", p, err))
		return
	}
	for _, alts := range deps {
		if r.holds(alts) {
			continue
		}
		if !r.choose(p, alts) {
			r.missing[clauseString(alts)] = true
		}
	}
}

// holds: some alternative is already selected or installed at a fitting version.
func (r *resolver) holds(alts []relation) bool {
	for _, a := range alts {
		if s, ok := r.selected[a.name]; ok && versionSatisfies(s.Version, a.op, a.version) {
			return true
		}
		if v, ok := r.inst[a.name]; ok && (v == "" || versionSatisfies(v, a.op, a.version)) {
			r.satisfied[a.name] = true
			return true
		}
		for _, pv := range r.ix.provides[a.name] {
			if _, ok := r.selected[pv.pkg.Package]; ok && providesFits(pv, a) {
				return true
			}
		}
	}
	return false
}

// choose selects the newest fitting package of the first alternative that
// has one, real packages before virtual ones. An alternative already selected
// at an unfitting version is a conflict, reported only if nothing else fits.
func (r *resolver) choose(from AptPackage, alts []relation) bool {
	var conflict error
	for _, a := range alts {
		if s, ok := r.selected[a.name]; ok {
			conflict = fmt.Errorf("apt: %s needs %s but %s is selected", from, a, s)
			continue
		}
		for _, p := range r.ix.byName[a.name] {
			if versionSatisfies(p.Version, a.op, a.version) {
				r.add(p)
				return true
			}
		}
	}
	for _, a := range alts {
		var best *AptPackage
		for _, pv := range r.ix.provides[a.name] {
			if providesFits(pv, a) && (best == nil || CompareDebVersions(pv.pkg.Version, best.Version) > 0 ||
				pv.pkg.Package < best.Package && pv.pkg.Version == best.Version) {
				p := pv.pkg
				best = &p
			}
		}
		if best != nil {
			r.add(*best)
			return true
		}
	}
	if conflict != nil {
		r.errs = append(r.errs, conflict)
		return true
	}
	return false
}

// providesFits: an unversioned Provides only meets unversioned dependencies.
func providesFits(pv provision, a relation) bool {
	if a.op == "" {
		return true
	}
	return pv.version != "" && versionSatisfies(pv.version, a.op, a.version)
}

func clauseString(alts []relation) string {
	s := make([]string, len(alts))
	for i, a := range alts {
		s[i] = a.String()
	}
	return strings.Join(s, " | ")
}

func joinNonEmpty(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + ", " + b
}
