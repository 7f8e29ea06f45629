package serve

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lablup/bainode/builder/bake"
	"github.com/lablup/bainode/builder/cpio"
	"github.com/lablup/bainode/builder/deploy"
	"github.com/lablup/bainode/builder/inventory"
)

// Image mode: a node whose role has a baked image boots the deploy
// environment, which writes the image to its disk and reports; once it
// has reported "deployed", its boot script sends it to its local disk, so
// a reboot never images it again. "bainode nodes redeploy" re-arms it.
//
//   GET  /deploy/env/{sha256}/{vmlinuz,initrd.img}  the deploy environment
//   GET  /images/{sha256}.raw.zst[.json]             role images, manifests
//   GET  /deploy/{mac}/node.cpio                     the agent's config (token)
//   POST /deploy/{host}/status                       the agent's stages
//
// The first two are content-addressed and immutable; none redirects.

// DeployStage is the event stage that carries deploy status; prune keeps
// each node's latest (see inventory.DeployStage).
const DeployStage = inventory.DeployStage

// Deploy configures image mode.
type Deploy struct {
	Kernel, Initrd string // the deploy environment (bainode deploy-env)
	// Images maps a role to its raw.zst; the bake manifest is beside it
	// (bake.ManifestPath).
	Images map[string]string
	// Disk returns the node's disk rule from the site.
	Disk func(site []byte, n inventory.Node) (deploy.DiskRule, error)
	// KernelArgs are added to the deploy kernel's command line (consoles).
	KernelArgs string
}

type blob struct {
	path, sha string
	size      int64
}

type deployAssets struct {
	kernel, initrd blob
	byRole         map[string]blob // raw.zst
	bySHA          map[string]blob // raw.zst and its manifest, by the image's sha
	manifests      map[string]blob
}

// loadDeploy hashes the deploy environment and reads every image's
// manifest; an image whose size disagrees with its manifest is refused.
func loadDeploy(d *Deploy) (*deployAssets, error) {
	a := &deployAssets{byRole: map[string]blob{}, bySHA: map[string]blob{}, manifests: map[string]blob{}}
	var err error
	if a.kernel, err = hashBlob(d.Kernel); err != nil {
		return nil, err
	}
	if a.initrd, err = hashBlob(d.Initrd); err != nil {
		return nil, err
	}
	for role, p := range d.Images {
		m, err := bake.ReadManifest(bake.ManifestPath(p))
		if err != nil {
			return nil, fmt.Errorf("image of role %s: %w", role, err)
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if m.Format != bake.FormatRawZst || st.Size() != m.Output.Size || len(m.Output.SHA256) != 64 {
			return nil, fmt.Errorf("image of role %s: %s is %d bytes of %s, its manifest says %d bytes of %s (want raw.zst)",
				role, p, st.Size(), filepath.Ext(p), m.Output.Size, m.Format)
		}
		b := blob{path: p, sha: m.Output.SHA256, size: m.Output.Size}
		a.byRole[role] = b
		a.bySHA[b.sha] = b
		a.manifests[b.sha] = blob{path: bake.ManifestPath(p)}
	}
	return a, nil
}

func hashBlob(p string) (blob, error) {
	f, err := os.Open(p)
	if err != nil {
		return blob{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return blob{path: p, sha: hex.EncodeToString(h.Sum(nil)), size: n}, err
}

func (s *server) deployRoutes(m *http.ServeMux) {
	if s.deploy == nil {
		return
	}
	m.HandleFunc("GET /deploy/env/{sha}/{file}", s.deployEnv)
	m.HandleFunc("GET /images/{file}", s.deployImage)
	m.HandleFunc("GET /deploy/{mac}/node.cpio", s.deployNode)
	m.HandleFunc("POST /deploy/{host}/status", s.deployStatus)
}

// immutable serves a content-addressed file with Range support.
func immutable(w http.ResponseWriter, r *http.Request, b blob, ctype string) {
	f, err := os.Open(b.path)
	if err != nil {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	if b.sha != "" {
		w.Header().Set("ETag", `"`+b.sha+`"`)
	}
	http.ServeContent(streaming(w), r, "", time.Time{}, f)
}

func (s *server) deployEnv(w http.ResponseWriter, r *http.Request) {
	var b blob
	switch r.PathValue("file") {
	case "vmlinuz":
		b = s.deploy.kernel
	case "initrd.img":
		b = s.deploy.initrd
	}
	if b.path == "" || r.PathValue("sha") != b.sha {
		notFound(w)
		return
	}
	immutable(w, r, b, "application/octet-stream")
}

func (s *server) deployImage(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	if sha, ok := strings.CutSuffix(file, ".raw.zst.json"); ok {
		if b, ok := s.deploy.manifests[sha]; ok {
			immutable(w, r, b, "application/json")
			return
		}
	} else if sha, ok := strings.CutSuffix(file, ".raw.zst"); ok {
		if b, ok := s.deploy.bySHA[sha]; ok {
			immutable(w, r, b, "application/zstd")
			return
		}
	}
	notFound(w)
}

// deployState is the node's latest deploy event, or a zero Event.
func (s *server) deployState(r *http.Request, host string) (inventory.Event, error) {
	ev, err := s.store.Events(r.Context(), host, 0)
	if err != nil {
		return inventory.Event{}, err
	}
	for i := len(ev) - 1; i >= 0; i-- {
		if ev[i].Stage == DeployStage {
			return ev[i], nil
		}
	}
	return inventory.Event{}, nil
}

// deployIPXE answers the boot script of an image-mode node: the deploy
// environment, or its local disk once deployed. It returns false for a
// node whose role has no image.
func (s *server) deployIPXE(w http.ResponseWriter, r *http.Request, e *entry, mac string) bool {
	if s.deploy == nil {
		return false
	}
	img, ok := s.deploy.byRole[e.node.Role]
	if !ok {
		return false
	}
	st, err := s.deployState(r, e.node.Hostname)
	if err != nil {
		s.storeError(w, r, err)
		return true
	}
	var b strings.Builder
	b.WriteString("#!ipxe\n")
	host := e.node.Hostname
	if st.Result == deploy.StageDeployed {
		// BIOS: boot the first disk; UEFI: hand back to the firmware, whose
		// next boot entry is the disk.
		fmt.Fprintf(&b, "echo bainode: %s is deployed; booting from its disk\n", host)
		b.WriteString("iseq ${platform} efi && exit 0 ||\n")
		b.WriteString("sanboot --no-describe --drive 0x80 || exit 0\n")
	} else {
		env := e.base + "/deploy/env/"
		fmt.Fprintf(&b, "echo bainode: deploying image %s of role %s to %s\n", img.sha[:12], e.node.Role, host)
		fmt.Fprintf(&b, "kernel %s%s/vmlinuz initrd=initrd.img initrd=node.cpio", env, s.deploy.kernel.sha)
		if s.cfg.Deploy.KernelArgs != "" {
			b.WriteString(" " + s.cfg.Deploy.KernelArgs)
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "initrd --name initrd.img %s%s/initrd.img\n", env, s.deploy.initrd.sha)
		fmt.Fprintf(&b, "initrd --name node.cpio %s%s\n", e.base, deploy.NodeConfigPath(mac))
		b.WriteString("boot\n")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, b.String())
	return true
}

// deployNode serves the agent's configuration as an initramfs fragment,
// 0600 inside. It holds the node's token, like the vendor-data served on
// the same terms (bind-ip applies).
func (s *server) deployNode(w http.ResponseWriter, r *http.Request) {
	mac, err := inventory.NormalizeMAC(r.PathValue("mac"))
	if err != nil {
		notFound(w)
		return
	}
	e, ok := s.seed(w, r, mac)
	if !ok {
		return
	}
	img, ok := s.deploy.byRole[e.node.Role]
	if !ok || e.node.TokenHash == "" {
		notFound(w)
		return
	}
	// A deployed node that still boots from the network (a static 'bainode
	// pxe' tree, a boot order with the network first) must not be imaged
	// again: the agent stops on 409, and iPXE falls through to the disk.
	st, err := s.deployState(r, e.node.Hostname)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	if st.Result == deploy.StageDeployed {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, e.node.Hostname+" is deployed; boot it from its disk, or run 'bainode nodes redeploy "+e.node.Hostname+"' to image it again", http.StatusConflict)
		return
	}
	site, err := s.store.Site(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	var rule deploy.DiskRule
	if s.cfg.Deploy.Disk != nil {
		if rule, err = s.cfg.Deploy.Disk(site.YAML, e.node); err != nil {
			s.log.Error("deploy: disk rule", "node", e.node.Hostname, "err", err)
			http.Error(w, "render failed", http.StatusInternalServerError)
			return
		}
	}
	key, err := s.nodeSecret(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	cfg := deploy.Config{
		Node: e.node.Hostname, Server: e.base,
		Token: inventory.NodeToken(key, e.node.Hostname, e.node.TokenGen),
		Image: deploy.Image{URL: e.base + "/images/" + img.sha + ".raw.zst", SHA256: img.sha, Size: img.size},
		Disk:  rule,
		Seed:  e.base + "/nocloud/" + e.node.Hostname + "/",
	}
	js, _ := json.MarshalIndent(cfg, "", "  ")
	a := cpio.NewArchive()
	a.File(deploy.ConfigFile, 0o600, append(js, '\n'))
	var buf bytes.Buffer
	a.WriteTo(&buf)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// deployStatus stores an agent's stage as a "deploy" event.
func (s *server) deployStatus(w http.ResponseWriter, r *http.Request) {
	host, ok := s.nodeAuth(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReportBody))
	if err != nil {
		bodyError(w, err)
		return
	}
	var st deploy.Status
	if err := json.Unmarshal(body, &st); err != nil ||
		!slices.Contains([]string{deploy.StageDeploying, deploy.StageDeployed, deploy.StageFailed}, st.Stage) {
		http.Error(w, "expected {\"stage\": deploying|deployed|failed, \"detail\": ...}", http.StatusBadRequest)
		return
	}
	s.addEvent(w, r, inventory.Event{Node: host, Stage: DeployStage, Result: st.Stage, Detail: clean(st.Detail, 2048)})
}

// redeploy re-arms a deployed node: its next network boot images it again.
func (s *server) redeploy(w http.ResponseWriter, r *http.Request) {
	host := r.PathValue("host")
	if _, err := s.store.Node(r.Context(), host); errors.Is(err, inventory.ErrNotFound) {
		http.Error(w, "no such node", http.StatusNotFound)
		return
	} else if err != nil {
		s.storeError(w, r, err)
		return
	}
	s.addEvent(w, r, inventory.Event{Node: host, Stage: DeployStage, Result: deploy.StageArmed,
		Detail: "re-armed: the next network boot deploys the image again"})
}

// CheckDeploy loads d as Handlers will, so a bad flag fails at start.
func CheckDeploy(d *Deploy) error {
	_, err := loadDeploy(d)
	return err
}

// SiteDisk is the Deploy.Disk of bainode sites: the node's disk: rule.
func SiteDisk(site []byte, n inventory.Node) (deploy.DiskRule, error) {
	_, node, err := siteNode(site, n)
	if err != nil {
		return deploy.DiskRule{}, err
	}
	return deploy.RuleOf(node.Disk)
}
