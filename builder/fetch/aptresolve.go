package fetch

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strings"

	"pault.ag/go/debian/dependency"
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

// parseDepends reads a Depends-style field ("a (>= 1) | b, c:any") into
// relations of alternatives; substvars (never in a binary index) are dropped.
func parseDepends(s string) ([]dependency.Relation, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	d, err := dependency.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	var out []dependency.Relation
	for _, r := range d.Relations {
		var alts []dependency.Possibility
		for _, p := range r.Possibilities {
			if !p.Substvar {
				alts = append(alts, p)
			}
		}
		if len(alts) > 0 {
			out = append(out, dependency.Relation{Possibilities: alts})
		}
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
			for _, rel := range rels {
				for _, a := range rel.Possibilities {
					pv := provision{pkg: p}
					if a.Version != nil {
						pv.version = a.Version.Number
					}
					ix.provides[a.Name] = append(ix.provides[a.Name], pv)
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

// MissingPackageError is a request no index has: the package, or the
// pinned Version of it.
type MissingPackageError struct{ Package, Version string }

func (e *MissingPackageError) Error() string {
	if e.Version != "" {
		return fmt.Sprintf("apt: no %s version %s in the indexes", e.Package, e.Version)
	}
	return fmt.Sprintf("apt: no package %s in the indexes", e.Package)
}

// Resolve picks packages for the requests ("name" or "name=version") and,
// recursively, their Pre-Depends and Depends, skipping what installed
// already satisfies. Each choice prefers the newest fitting version of the
// first alternative of "a | b" (real packages before virtual ones) and
// backtracks to the next candidate when a later requirement cannot be met,
// so the order of the requests does not matter. A dependency nobody
// provides is listed in Missing (the Ubuntu archive is not indexed here); an
// unknown request or a version conflict is an error.
func (ix *AptIndex) Resolve(requests []string, installed Installed) (*Resolution, error) {
	s := &solver{ix: ix, inst: installed, sel: map[string]AptPackage{}}
	for _, req := range requests {
		name, ver, pinned := strings.Cut(strings.TrimSpace(req), "=")
		found := false
		for _, p := range ix.byName[name] {
			found = found || !pinned || p.Version == ver
		}
		if _, inst := installed[name]; !found && !inst {
			return nil, &MissingPackageError{Package: name, Version: ver}
		}
		alt := dependency.Possibility{Name: name}
		if pinned {
			alt.Version = &dependency.VersionRelation{Operator: "=", Number: ver}
		}
		s.queue = append(s.queue, goal{from: "request " + req, alts: []dependency.Possibility{alt}, request: true})
	}
	if !s.solve(0) {
		if s.err == nil {
			s.err = fmt.Errorf("apt: no consistent set of packages for %s", strings.Join(requests, " "))
		}
		return nil, s.err
	}
	res := &Resolution{}
	for _, p := range s.sel {
		res.Packages = append(res.Packages, p)
	}
	sort.Slice(res.Packages, func(i, j int) bool { return res.Packages[i].Package < res.Packages[j].Package })
	res.Satisfied = sortedSet(s.satisfied)
	res.Missing = sortedSet(s.missing)
	return res, nil
}

// maxSolveSteps bounds the backtracking search; real dependency sets need a
// few hundred steps.
const maxSolveSteps = 100000

// goal is one relation to satisfy: a request, or a clause of a Depends.
type goal struct {
	from    string
	alts    []dependency.Possibility
	request bool // a request the installed system meets only at the requested version
}

// solver is a depth-first search with an undo trail: sel, queue, satisfied
// and missing grow as candidates are tried and are cut back on failure.
type solver struct {
	ix        *AptIndex
	inst      Installed
	sel       map[string]AptPackage
	queue     []goal
	satisfied []string
	missing   []string
	steps     int
	err       error // why the last branch failed; fatal once steps run out
}

func (s *solver) solve(i int) bool {
	for ; i < len(s.queue); i++ {
		g := s.queue[i]
		if s.holds(g) {
			continue
		}
		cands, conflict := s.candidates(g)
		if len(cands) == 0 {
			if conflict == nil && !g.request {
				s.missing = append(s.missing, relationString(g.alts))
				continue
			}
			if conflict == nil {
				conflict = fmt.Errorf("apt: %s cannot be met", g.from)
			}
			s.err = conflict
			return false
		}
		for _, p := range cands {
			if s.steps++; s.steps > maxSolveSteps {
				s.err = fmt.Errorf("apt: gave up after %d resolution steps", maxSolveSteps)
				return false
			}
			deps, err := s.depsOf(p)
			if err != nil {
				s.err = err
				s.steps = maxSolveSteps // a broken index is not worth backtracking over
				return false
			}
			nq, ns, nm := len(s.queue), len(s.satisfied), len(s.missing)
			s.sel[p.Package] = p
			for _, rel := range deps {
				s.queue = append(s.queue, goal{from: p.String(), alts: rel.Possibilities})
			}
			if s.solve(i + 1) {
				return true
			}
			if s.steps >= maxSolveSteps {
				return false
			}
			delete(s.sel, p.Package)
			s.queue, s.satisfied, s.missing = s.queue[:nq], s.satisfied[:ns], s.missing[:nm]
		}
		return false
	}
	return true
}

func (s *solver) depsOf(p AptPackage) ([]dependency.Relation, error) {
	rels, err := parseDepends(joinNonEmpty(p.PreDepends, p.Depends))
	if err != nil {
		return nil, fmt.Errorf("apt: %s: Depends: %w", p, err)
	}
	return rels, nil
}

// holds: some alternative is already selected or installed at a fitting
// version (an installed package meets a request only if it is unpinned or
// at the pinned version).
func (s *solver) holds(g goal) bool {
	for _, a := range g.alts {
		if p, ok := s.sel[a.Name]; ok && versionSatisfies(p.Version, a.Version) {
			return true
		}
		if v, ok := s.inst[a.Name]; ok && (v == "" && !g.request || versionSatisfies(v, a.Version)) {
			s.satisfied = append(s.satisfied, a.Name)
			return true
		}
		for _, pv := range s.ix.provides[a.Name] {
			if _, ok := s.sel[pv.pkg.Package]; ok && providesFits(pv, a) {
				return true
			}
		}
	}
	return false
}

// candidates lists, in order of preference, the packages that would meet g:
// for each alternative its fitting versions, newest first, then the
// packages that provide one. With none, conflict says whether that is
// because a package of that name is already selected at another version.
func (s *solver) candidates(g goal) (cands []AptPackage, conflict error) {
	for _, a := range g.alts {
		if p, ok := s.sel[a.Name]; ok {
			conflict = fmt.Errorf("apt: %s needs %s but %s is selected", g.from, a, p)
			continue
		}
		for _, p := range s.ix.byName[a.Name] {
			if versionSatisfies(p.Version, a.Version) {
				cands = append(cands, p)
			}
		}
	}
	for _, a := range g.alts {
		var provs []AptPackage
		for _, pv := range s.ix.provides[a.Name] {
			if _, taken := s.sel[pv.pkg.Package]; !taken && providesFits(pv, a) {
				provs = append(provs, pv.pkg)
			}
		}
		sort.SliceStable(provs, func(i, j int) bool {
			if c := CompareDebVersions(provs[i].Version, provs[j].Version); c != 0 {
				return c > 0
			}
			return provs[i].Package < provs[j].Package
		})
		cands = append(cands, provs...)
	}
	return cands, conflict
}

// providesFits: an unversioned Provides only meets unversioned dependencies.
func providesFits(pv provision, a dependency.Possibility) bool {
	if a.Version == nil {
		return true
	}
	return pv.version != "" && versionSatisfies(pv.version, a.Version)
}

func relationString(alts []dependency.Possibility) string {
	return dependency.Relation{Possibilities: alts}.String()
}

func sortedSet(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
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
