// Package templates holds bainode's text templates and built-in example
// sites as data. It only embeds; render and the CLI read it as an fs.FS.
package templates

import "embed"

// FS holds cloud-init/*.tmpl, targets.yaml and examples/*.yaml.
//
//go:embed cloud-init targets.yaml examples site.yaml
var FS embed.FS
