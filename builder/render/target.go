package render

import (
	"io/fs"

	"github.com/lablup/bainode/builder/plan"
)

// Target is what differs between operating systems (plan owns
// targets.yaml).
type Target = plan.Target

// LoadTargets reads targets.yaml from a templates FS.
func LoadTargets(fsys fs.FS) (map[string]Target, error) { return plan.LoadTargets(fsys) }
