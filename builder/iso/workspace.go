package iso

import "os"

// workspace makes go-diskfs's workspace. go-diskfs reads every byte of
// every file in it, the sparse stand-ins of deferred files included. On a
// disk file system each read of a hole allocates and zeroes page cache;
// on tmpfs a hole reads as the shared zero page. Measured on a 0.5 GiB
// fixture, that read was 60% of the remaster's CPU. The workspace holds
// only small files and holes (deferLarge takes every big one), so it
// costs next to no memory there. Without a usable tmpfs it goes beside
// the output.
func workspace(outDir string) (string, error) {
	if d := os.Getenv("BAINODE_ISO_WORKSPACE"); d != "" {
		return os.MkdirTemp(d, ".bainode-iso-ws-")
	}
	for _, d := range tmpfsDirs() {
		if ws, err := os.MkdirTemp(d, ".bainode-iso-ws-"); err == nil {
			return ws, nil
		}
	}
	return os.MkdirTemp(outDir, ".bainode-iso-ws-")
}
