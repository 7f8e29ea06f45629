package fetch

import (
	"fmt"

	"pault.ag/go/debian/dependency"
	"pault.ag/go/debian/version"
)

// CompareDebVersions orders Debian package versions as dpkg does; it returns
// -1, 0 or 1. A string dpkg would reject still compares by dpkg's rules (the
// indexes' own checks reject such versions before they get here).
func CompareDebVersions(a, b string) int {
	c := version.Compare(parseVersionLax(a), parseVersionLax(b))
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

func parseVersionLax(s string) version.Version {
	v, err := version.Parse(s)
	if err != nil {
		return version.Version{Version: s}
	}
	return v
}

// versionSatisfies reports whether version v meets the relation r (nil: any
// version).
func versionSatisfies(v string, r *dependency.VersionRelation) bool {
	return r == nil || r.SatisfiedBy(parseVersionLax(v))
}

// parseDebVersion is version.Parse plus dpkg's refusal of an empty upstream
// part ("-1", "1:-1"), which the library lets through.
func parseDebVersion(s string) (version.Version, error) {
	v, err := version.Parse(s)
	if err == nil && v.Version == "" {
		err = fmt.Errorf("version %q has an empty upstream part", s)
	}
	return v, err
}
