package iso

import (
	"os"
	"syscall"
)

const tmpfsMagic = 0x01021994

// tmpfsDirs lists the tmpfs directories a workspace may go in: the
// user's runtime directory, then /dev/shm.
func tmpfsDirs() []string {
	var out []string
	for _, d := range []string{os.Getenv("XDG_RUNTIME_DIR"), "/dev/shm"} {
		var st syscall.Statfs_t
		if d != "" && syscall.Statfs(d, &st) == nil && st.Type == tmpfsMagic {
			out = append(out, d)
		}
	}
	return out
}
