// Package overlays holds the static files bainode puts on every node (the
// provisioning script, the verifier, apt signing keys, a systemd unit) as
// data. It only embeds; render reads it as an fs.FS.
package overlays

import "embed"

// FS holds provision/, verify/, keys/ and systemd/.
//
//go:embed provision verify keys systemd
var FS embed.FS
