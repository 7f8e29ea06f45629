package pxe

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/lablup/bainode/builder/deploy"
	"github.com/lablup/bainode/builder/inventory"
)

// Image is install mode "image": the deploy environment of 'bainode
// deploy-env' writes the role's baked image, which bainoded serves, to the
// node's disk.
const Image = "image"

// ImageEntry is the boot entry of a node in image mode. server is how the
// node reaches bainoded (http://HOST[:PORT]); args are added for the deploy
// kernel (consoles).
//
// The agent's configuration holds the node's token, so it never goes into
// the tree: iPXE fetches it from bainoded as a second initrd, and for the
// loaders that fetch only over TFTP (pxelinux; Debian's signed GRUB has no
// http module) the agent fetches it itself from the same URL, named by
// deploy.ConfigArg. One entry, the same command line in every loader.
func ImageEntry(server, mac string, args []string) (Entry, error) {
	mac, err := inventory.NormalizeMAC(mac)
	if err != nil {
		return Entry{}, err
	}
	url := server + deploy.NodeConfigPath(mac)
	return Entry{
		Name:       Image,
		Label:      "bainode deploy environment (image mode)",
		Kernel:     Image + "/vmlinuz",
		Initrd:     Image + "/initrd.img",
		Args:       append([]string{deploy.ConfigArg + "=" + url}, args...),
		NodeInitrd: url,
	}, nil
}

// addDeployEnv puts the deploy environment of dir into the tree.
func (t *Tree) addDeployEnv(dir string) error {
	for _, name := range []string{"vmlinuz", "initrd.img"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("deploy environment %s: no %s (write it with 'bainode deploy-env -o %s')", dir, name, dir)
		}
		if err := t.Add(Image+"/"+name, File{Src: p}); err != nil {
			return err
		}
	}
	return nil
}
