package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing/fstest"
	"time"

	"github.com/lablup/bainode/builder/seed"
)

// Config is what the agent knows about its node. bainoded serves it in a
// small per-node initramfs, not on the kernel command line: the kernel
// prints its command line to the console, and Token must never show.
type Config struct {
	Node   string   `json:"node"`   // hostname
	Server string   `json:"server"` // bainoded's base URL
	Token  string   `json:"token"`  // the node's reporting token
	Image  Image    `json:"image"`
	Disk   DiskRule `json:"disk"`
	// Seed is the node's nocloud-net URL on bainoded, with its trailing
	// slash: the installed system reads its seed from there.
	Seed string `json:"seed,omitempty"`
	// SeedFiles, instead of Seed, is the node's NoCloud seed itself
	// (meta-data, user-data, network-config), for a node deployed with no
	// bainoded to read it from.
	SeedFiles map[string][]byte `json:"seed_files,omitempty"`
	// Reimage lets a self-contained deploy write a disk that already
	// holds this very deployment (see ErrDeployed).
	Reimage bool `json:"-"`
}

// ReimageArg on the kernel command line sets Config.Reimage.
const ReimageArg = "bainode.reimage"

// Image is the role's baked image, as the bake manifest describes it.
type Image struct {
	URL    string `json:"url,omitempty"` // absolute; content-addressed and immutable
	SHA256 string `json:"sha256"`        // of the raw.zst stream
	Size   int64  `json:"size"`          // of the raw.zst stream
	// Medium, instead of URL, reads the image off the boot medium (a
	// self-contained ISO): the ISO9660 volume ID and the files of its root
	// directory that hold the stream, in order (see MaxPart).
	Medium string   `json:"medium,omitempty"`
	Parts  []string `json:"parts,omitempty"`
}

// Deploy stages reported to bainoded.
const (
	StageDeploying = "deploying"
	StageDeployed  = "deployed"
	StageFailed    = "failed"
	StageArmed     = "armed" // set by bainode nodes redeploy
)

// StatusPath is where the agent posts its stage, below Server.
func StatusPath(node string) string { return "/deploy/" + node + "/status" }

// Status is the body of a status post.
type Status struct {
	Stage  string `json:"stage"`
	Detail string `json:"detail,omitempty"`
}

// System is what the agent touches; tests point it at a file-backed disk.
type System struct {
	SysBlock string // /sys/block
	SysNet   string // /sys/class/net, where LoadConfig finds the MACs
	Dev      string // /dev
	Client   *http.Client
	// Stall is how long a download may make no progress (a restarting
	// bainoded) before the deploy fails.
	Stall  time.Duration
	Logf   func(format string, a ...any)
	Reboot func() error // nil: reboot the machine
}

// Run deploys the node's image and reboots. On failure it has reported
// why, the disk has no partition table, and it returns the error.
func Run(ctx context.Context, cfg Config, sys System) error {
	if sys.SysBlock == "" {
		sys.SysBlock = "/sys/block"
	}
	if sys.Dev == "" {
		sys.Dev = "/dev"
	}
	if sys.Client == nil {
		sys.Client = &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 30 * time.Second}}
	}
	if sys.Stall == 0 {
		sys.Stall = 10 * time.Minute
	}
	if sys.Logf == nil {
		sys.Logf = func(string, ...any) {}
	}
	if sys.Reboot == nil {
		sys.Reboot = reboot
	}
	if cfg.Server == "" {
		sys.Logf("no bainoded in the configuration: nothing to report to")
	}
	detail, err := deploy(ctx, cfg, sys)
	if errors.Is(err, ErrDeployed) {
		return err
	}
	if err != nil {
		sys.Logf("FAILED: %v", err)
		if rerr := postStatus(ctx, cfg, sys, Status{Stage: StageFailed, Detail: err.Error()}, time.Minute); rerr != nil {
			sys.Logf("could not report the failure: %v", rerr)
		}
		return err
	}
	// Until bainoded knows, the next network boot would image the disk
	// again; keep trying for a while, then reboot regardless.
	if err := postStatus(ctx, cfg, sys, Status{Stage: StageDeployed, Detail: detail}, 30*time.Minute); err != nil {
		sys.Logf("could not report deployed (the next network boot deploys again): %v", err)
	}
	sys.Logf("deployed: %s; rebooting", detail)
	if cfg.Image.Medium != "" {
		ejectMedium(sys)
	}
	return sys.Reboot()
}

func deploy(ctx context.Context, cfg Config, sys System) (string, error) {
	if (cfg.Image.URL == "") == (cfg.Image.Medium == "" || len(cfg.Image.Parts) == 0) || len(cfg.Image.SHA256) != 64 || cfg.Image.Size <= 0 {
		return "", errors.New("the deploy configuration names no image, or both a URL and a medium")
	}
	disks, err := ListDisks(sys.SysBlock, sys.Dev)
	if err != nil {
		return "", fmt.Errorf("listing disks: %w", err)
	}
	disk, err := cfg.Disk.Choose(withoutMedia(disks, sys.Logf))
	if err != nil {
		return "", err
	}
	sys.Logf("target disk %s", disk)
	// The seed first: it is small, and a bainoded that cannot render it
	// should stop the deploy before the disk is touched.
	iso, err := seedImage(ctx, cfg, sys)
	if err != nil {
		return "", err
	}
	open := func() (imageSource, func() error, error) {
		if cfg.Image.Medium == "" {
			r := &rangeReader{ctx: ctx, client: sys.Client, url: cfg.Image.URL, size: cfg.Image.Size,
				sum: sha256.New(), stall: sys.Stall, logf: sys.Logf}
			return r, r.Close, nil
		}
		m, dev, err := openMediumImage(sys, cfg.Image)
		if err != nil {
			return nil, nil, err
		}
		sys.Logf("reading the image from the boot medium %s", dev)
		return m, m.Close, nil
	}
	if cfg.Image.Medium != "" && !cfg.Reimage {
		// No bainoded remembers this deploy: a medium left attached would
		// image the disk again at every boot. The disk tells instead.
		if done, err := deployedAlready(disk, iso, open); err != nil || done {
			if err == nil {
				err = fmt.Errorf("%w: %s holds this image and seed (boot from the disk, or add %s=1 to the kernel command line to write it again)", ErrDeployed, disk.Name, ReimageArg)
			}
			return "", err
		}
	}
	if err := postStatus(ctx, cfg, sys, Status{Stage: StageDeploying, Detail: fmt.Sprintf("writing image %s to %s", cfg.Image.SHA256[:12], disk)}, 5*time.Minute); err != nil {
		return "", fmt.Errorf("reporting to bainoded: %w", err)
	}

	f, err := os.OpenFile(disk.Dev, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	block := st.Mode()&os.ModeDevice != 0
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", err
	}
	if err := wipe(f, size, block); err != nil {
		return "", fmt.Errorf("wiping the partition tables of %s: %w", disk.Name, err)
	}
	r, closeSrc, err := open()
	if err != nil {
		return "", err
	}
	defer closeSrc()
	start := time.Now()
	s, err := writeStream(f, r, maxImage(size), block, cfg.Image.SHA256, sys.Logf)
	if err != nil {
		return "", err
	}
	lay, err := editTable(s.head, size)
	if err != nil {
		return "", err
	}
	if _, err := f.WriteAt(iso, lay.SeedOff); err != nil {
		return "", fmt.Errorf("writing the seed partition: %w", err)
	}
	if lay.Backup != nil {
		if _, err := f.WriteAt(lay.Backup, lay.BackupOff); err != nil {
			return "", fmt.Errorf("writing the backup GPT: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	// Last, the first MiB: only now can the disk boot.
	if _, err := f.WriteAt(s.head, 0); err != nil {
		return "", fmt.Errorf("writing the partition table: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	secs := time.Since(start).Seconds()
	detail := fmt.Sprintf("%s: %d MiB image in %.0fs (%.1f MiB/s), %s partition %d grown to %d MiB, seed on partition %d",
		disk.Name, s.size>>20, secs, float64(s.size>>20)/max(secs, 0.001), lay.Scheme, lay.Grown, lay.GrownTo>>20, lay.SeedPart)
	if s.resumes > 0 {
		detail += fmt.Sprintf(", download resumed %d times", s.resumes)
	}
	return detail, nil
}

// seedImage builds the NoCloud seed the installed system finds on its
// disk (label cidata): the node's seed as bainoded renders it now, with
// meta-data's seedfrom pointing cloud-init at bainoded's nocloud-net copy.
// network-config only ever comes from here, as seedfrom fetches the rest.
func seedImage(ctx context.Context, cfg Config, sys System) ([]byte, error) {
	files := fstest.MapFS{}
	if cfg.Seed == "" && len(cfg.SeedFiles["meta-data"]) == 0 {
		return nil, errors.New("the deploy configuration has no seed for the installed system")
	}
	for _, name := range []string{"meta-data", "user-data", "vendor-data", "network-config"} {
		if cfg.Seed == "" {
			if b := cfg.SeedFiles[name]; len(b) > 0 || name == "user-data" {
				files[name] = &fstest.MapFile{Data: b, Mode: 0o644}
			}
			continue
		}
		b, err := getRetry(ctx, sys, cfg.Seed+name, 5*time.Minute)
		if err != nil {
			return nil, fmt.Errorf("reading the node's seed: %w", err)
		}
		if name == "meta-data" && !bytes.Contains(b, []byte("\nseedfrom:")) && !bytes.HasPrefix(b, []byte("seedfrom:")) {
			if len(b) > 0 && b[len(b)-1] != '\n' {
				b = append(b, '\n')
			}
			b = append(b, fmt.Sprintf("seedfrom: %q\n", cfg.Seed)...)
		}
		if len(b) == 0 && name != "user-data" {
			continue
		}
		files[name] = &fstest.MapFile{Data: b, Mode: 0o644}
	}
	dir, err := os.MkdirTemp("", "seed")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "seed.iso")
	if err := seed.WriteISO(p, files); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err == nil && len(b) > seedSize {
		err = fmt.Errorf("the seed image is %d bytes, more than the %d of its partition", len(b), seedSize)
	}
	return b, err
}

func getRetry(ctx context.Context, sys System, url string, within time.Duration) ([]byte, error) {
	deadline := time.Now().Add(within)
	for {
		b, err := func() ([]byte, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return nil, err
			}
			resp, err := sys.Client.Do(req)
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusConflict {
				msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				return nil, fmt.Errorf("%w: %s", ErrDeployed, strings.TrimSpace(string(msg)))
			}
			if resp.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("%s: %s", url, resp.Status)
			}
			return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		}()
		if err == nil || errors.Is(err, ErrDeployed) || time.Now().After(deadline) || ctx.Err() != nil {
			return b, err
		}
		sys.Logf("%v; retrying", err)
		time.Sleep(2 * time.Second)
	}
}

// ErrDeployed is bainoded's answer (409) for a node whose image is already
// on its disk: the agent stops without touching the disk, and exits with
// ExitDeployed so the deploy environment's init can say so.
var ErrDeployed = errors.New("this node is deployed already")

// ExitDeployed is the agent's exit status for ErrDeployed.
const ExitDeployed = 3

// postStatus reports a stage with the node's token, retrying within.
func postStatus(ctx context.Context, cfg Config, sys System, s Status, within time.Duration) error {
	if cfg.Server == "" { // a self-contained deploy
		return nil
	}
	body, _ := json.Marshal(s)
	url := strings.TrimSuffix(cfg.Server, "/") + StatusPath(cfg.Node)
	deadline := time.Now().Add(within)
	for {
		err := func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+cfg.Token)
			resp, err := sys.Client.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("%s: %s", url, resp.Status)
			}
			return nil
		}()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		sys.Logf("report %s: %v; retrying", s.Stage, err)
		time.Sleep(2 * time.Second)
	}
}
