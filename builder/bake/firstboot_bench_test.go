package bake

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lablup/bainode/builder/seed"
	"github.com/lablup/bainode/builder/smoke"
	"github.com/lablup/bainode/builder/verify"
	"github.com/lablup/bainode/builder/vm"
	"github.com/lablup/bainode/testing/qemu"
)

// BenchmarkFirstBoot measures what a bake buys a node: the time from QEMU's
// start to the verifier's report on the first boot of
//   - the shared payload bake (TestBakeSmoke's image) with its thin node
//     seed: the node phase only, nothing installed;
//   - the stock test base with the full seed of the same site and role and
//     the same payload disk (artifacts: payload, offline like the bake):
//     everything installed at first boot, as builder/payload's VM test does.
//
// It prints a markdown table and the ratio baked/stock. The two boots run
// one after the other, each with the same 2 vCPUs and memory: in parallel
// they would share the host's cores for part of the time only (the baked
// boot ends first), which flatters the stock path. scripts/bench.sh
// (bake_bench) runs it once.
func BenchmarkFirstBoot(b *testing.B) {
	needBake(b)
	dir := b.TempDir()
	site, n := bakedSite(b)
	full := renderSeed(b, site, n)
	stockSeed := filepath.Join(dir, "stock-seed.iso")
	if err := seed.WriteISO(stockSeed, full.FS()); err != nil {
		b.Fatal(err)
	}
	paths := []struct {
		name, disk, seed string
		drives           []vm.Drive
	}{
		{"baked image, thin node seed", baked.output, nodeSeedISO(b, dir), nil},
		{"stock base, full seed + payload disk", baked.img.Disk, stockSeed,
			[]vm.Drive{{Path: baked.payload, Format: vm.FormatRaw, Media: vm.MediaDisk, ReadOnly: true}}},
	}
	fmt.Printf("\n### first boot: baked node vs stock base (%s, 2 vCPUs and 1.5 GiB per guest, one after the other, %d host CPUs, load %s at the start)\n\n",
		baked.accel, runtimeCPUs(), loadAvg())
	fmt.Printf("The bake itself (once per image): %.1f s.\n\n", baked.wall.Seconds())
	fmt.Println("| path | first boot to verifier report | verifier pass/fail/skip | what ran at first boot |")
	fmt.Println("|---|---:|---|---|")
	var took []time.Duration
	var notes []string
	for i, p := range paths {
		o := qemu.Smoke(b, baked.img, p.disk, baked.accel)
		o.Seed, o.Drives, o.SeedFormat, o.Boots, o.NoNetwork = p.seed, p.drives, "iso", 1, true
		o.Timeout, o.MemoryMiB, o.CPUs = baked.accel.Timeout(15*time.Minute), 1536, 2
		o.LogDir = filepath.Join(dir, fmt.Sprintf("logs-%d", i))
		marks := &stageMarks{}
		o.Progress = marks
		if testing.Verbose() {
			o.Progress = io.MultiWriter(marks, os.Stderr)
		}
		res, err := smoke.Run(b.Context(), o)
		if err != nil {
			b.Fatalf("%s: %v", p.name, err)
		}
		serialB, _ := os.ReadFile(res.Logs[0])
		serial := strings.ReplaceAll(string(serialB), "\r", "")
		d := marks.reportAfter()
		took = append(took, d)
		s := res.Reports[0].Summary
		fmt.Printf("| %s | %.1f s | %d/%d/%d | %s |\n", p.name, d.Seconds(), s.Pass, s.Fail, s.Skip, ranAtBoot(serial))
		notes = append(notes, fmt.Sprintf("- %s, stages (s after QEMU started): %s", p.name, marks.timeline()))
		for _, c := range res.Reports[0].Checks {
			if c.Status == verify.StatusFail {
				b.Errorf("%s: %s failed: expected %q, got %q (%s)", p.name, c.ID, c.Expected, c.Actual, c.Detail)
			}
		}
	}
	fmt.Printf("\n- ratio baked/stock: %.2fx (issue 12's goal for image mode: at most 0.5x)\n%s\n- load average at the end: %s\n",
		took[0].Seconds()/took[1].Seconds(), strings.Join(notes, "\n"), loadAvg())
}

// ranAtBoot says what a first boot's console shows was done: the
// provisioning phase and its steps, and what dpkg and docker installed.
func ranAtBoot(serial string) string {
	var parts []string
	if m := regexp.MustCompile(`bainode-provision\[[a-z]+\]: (phase [a-z]+: [a-z ]+)`).FindStringSubmatch(serial); m != nil {
		parts = append(parts, "provisioning "+m[1])
	} else {
		parts = append(parts, "no provisioning phase line")
	}
	if regexp.MustCompile(`bainode-provision\[payload\]: begin`).MatchString(serial) {
		parts = append(parts, "payload checked and mounted")
	}
	setUp := regexp.MustCompile(`(?m)(^|cloud-init\[\d+\]: )Setting up \S+ \(`).FindAllString(serial, -1)
	if !dpkgInstall.MatchString(serial) {
		parts = append(parts, "dpkg: nothing")
	} else {
		parts = append(parts, fmt.Sprintf("dpkg set up %d packages", len(setUp)))
	}
	if k := strings.Count(serial, "loaded from the payload"); k > 0 {
		parts = append(parts, fmt.Sprintf("%d image(s) loaded", k))
	}
	return strings.Join(parts, "; ")
}

// stageMarks timestamps smoke's progress lines as they arrive: QEMU's
// start, cloud-init's stages, the provisioning steps and the report.
// Run's Elapsed also counts the pause before the power is cut.
type stageMarks struct {
	mu    sync.Mutex
	buf   []byte
	start time.Time
	marks []string
	end   time.Duration
}

var stageLine = regexp.MustCompile(`^boot \d+: \[\s*\d+s\] (.*)$`)

func (s *stageMarks) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.buf = append(s.buf, p...)
	for {
		i := strings.IndexByte(string(s.buf), '\n')
		if i < 0 {
			break
		}
		l := string(s.buf[:i])
		s.buf = s.buf[i+1:]
		switch {
		case strings.Contains(l, "started QEMU"):
			s.start = now
		case strings.Contains(l, "report after") && !s.start.IsZero():
			s.end = now.Sub(s.start)
		case stageLine.MatchString(l) && !s.start.IsZero():
			s.marks = append(s.marks, fmt.Sprintf("%s %.0f", stageLine.FindStringSubmatch(l)[1], now.Sub(s.start).Seconds()))
		}
	}
	return len(p), nil
}

func (s *stageMarks) reportAfter() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end
}

func (s *stageMarks) timeline() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.marks, ", ")
}
