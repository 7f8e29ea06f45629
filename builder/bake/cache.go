package bake

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/lablup/bainode/builder/atomicfile"
)

// Inputs are everything the output depends on; their hash is the cache key.
type Inputs struct {
	Base     FileSum  `json:"base"`
	Kernel   *FileSum `json:"kernel,omitempty"`
	Initrd   *FileSum `json:"initrd,omitempty"`
	Append   string   `json:"append,omitempty"`
	Seed     string   `json:"seed_sha256"` // the image seed, before its random marker
	Plan     string   `json:"plan_sha256"` // see PlanHash; node seeds are checked against it
	Payload  *FileSum `json:"payload,omitempty"`
	Online   bool     `json:"online"`
	DiskSize int64    `json:"disk_size,omitempty"`
	Format   Format   `json:"format"`
	Compat   bool     `json:"compat,omitempty"` // zlib qcow2 for QEMU < 5.1
	Bainode  string   `json:"bainode_version"`
	Seal     string   `json:"seal_sha256"` // the seal script: a fix there rebakes
}

// Key hashes the inputs.
func (in Inputs) Key() string {
	b, _ := json.Marshal(in)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (o Options) inputs() (Inputs, string, error) {
	in := Inputs{Append: o.Append, Online: o.Online, DiskSize: o.DiskSize, Format: o.Format, Compat: o.Compat, Bainode: o.Version}
	var err error
	sum := func(path string) (*FileSum, error) {
		if path == "" || err != nil {
			return nil, err
		}
		s, n, e := o.hashFile(path)
		if e != nil {
			err = e
			return nil, e
		}
		return &FileSum{Path: filepath.Base(path), SHA256: s, Size: n}, nil
	}
	base, _ := sum(o.Base)
	in.Kernel, _ = sum(o.Kernel)
	in.Initrd, _ = sum(o.Initrd)
	in.Payload, _ = sum(o.Payload)
	if err != nil {
		return in, "", err
	}
	in.Base = *base
	if o.BaseSHA256 != "" && base.SHA256 != o.BaseSHA256 {
		return in, "", fmt.Errorf("base: %s has sha256 %s, not the %s the fetch cache recorded: check the cache with 'bainode fetch --check'", o.Base, base.SHA256, o.BaseSHA256)
	}
	seed, err := ImageSeed(o.Seed, "")
	if err != nil {
		return in, "", err
	}
	h := sha256.New()
	for _, name := range []string{"user-data", "meta-data", "network-config", "vendor-data"} {
		b := seed.Map()[name]
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	in.Seed = hex.EncodeToString(h.Sum(nil))
	if in.Plan, err = PlanHash(o.Seed); err != nil {
		return in, "", err
	}
	ss := sha256.Sum256([]byte(sealScript + sealUnit))
	in.Seal = hex.EncodeToString(ss[:])
	return in, in.Key(), nil
}

// hashFile returns path's sha256, remembered in HashCache by path, size,
// mtime and inode, so an unchanged multi-GB base is not read again.
func (o Options) hashFile(path string) (string, int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	var memo string
	if o.HashCache != "" {
		abs, _ := filepath.Abs(path)
		var ino uint64
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		id := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d\x00%d", abs, fi.Size(), fi.ModTime().UnixNano(), ino))
		memo = filepath.Join(o.HashCache, "sha256-"+hex.EncodeToString(id[:16]))
		if b, err := os.ReadFile(memo); err == nil && len(strings.TrimSpace(string(b))) == 64 {
			return strings.TrimSpace(string(b)), fi.Size(), nil
		}
	}
	sum, n, err := sha256File(path)
	if err != nil {
		return "", 0, err
	}
	if memo != "" && os.MkdirAll(o.HashCache, 0o755) == nil {
		atomicfile.Write(memo, []byte(sum+"\n"), 0o644)
	}
	return sum, n, nil
}

// cached returns output's manifest when it was made from the same inputs
// and the output is still there with the size it had.
func cached(output, key string) (Manifest, bool) {
	m, err := ReadManifest(ManifestPath(output))
	if err != nil || m.Key != key {
		return m, false
	}
	fi, err := os.Stat(output)
	if err != nil || fi.Size() != m.Output.Size {
		return m, false
	}
	return m, true
}
