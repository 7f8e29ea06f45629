package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Machine is a running QEMU started by Start. Stop must be called on every
// path; it is safe to call more than once.
type Machine struct {
	cmd       *exec.Cmd
	args      []string
	dir       string // temp dir owned by this machine
	serialLog string
	con       *console
	stderr    *tailBuffer

	done    chan struct{} // closed once QEMU has exited and been reaped
	waitErr error         // QEMU's exit status; read after done

	stopOnce sync.Once
	stopErr  error
}

// Start boots cfg and returns once QEMU runs. The guest's serial console is
// copied to cfg.Console, kept in memory for WaitFor and written to
// cfg.SerialLog. When ctx ends, QEMU is killed; Stop still has to be called
// to remove the temp dir.
func Start(ctx context.Context, cfg Config) (m *Machine, err error) {
	if cfg.Firmware == UEFI && cfg.OVMFCode == "" && cfg.OVMFVars == "" {
		if cfg.OVMFCode, cfg.OVMFVars, err = FindOVMF(); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	qemu, err := qemuBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bainode-vm-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()

	run, err := prepare(ctx, cfg, dir)
	if err != nil {
		return nil, err
	}
	args, err := Args(run)
	if err != nil {
		return nil, err
	}

	m = &Machine{
		args:      args,
		dir:       dir,
		serialLog: run.SerialLog,
		con:       newConsole(cfg.Console),
		stderr:    &tailBuffer{max: 4096},
		done:      make(chan struct{}),
	}
	m.cmd = exec.Command(qemu, args...)
	m.cmd.Stdout = m.con
	m.cmd.Stderr = m.stderr
	m.cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true, // a ^C in the terminal goes to us, not to QEMU
		// The kernel kills QEMU when the OS thread that started it ends,
		// which in Go means our process: even a crash or SIGKILL of the
		// test binary, where no cleanup runs, leaves no QEMU behind.
		Pdeathsig: syscall.SIGKILL,
	}
	// Helpers QEMU spawns (guestfwd cmd:) may hold stdout after QEMU is gone.
	m.cmd.WaitDelay = 2 * time.Second
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", qemu, err)
	}
	go func() {
		m.waitErr = m.cmd.Wait()
		close(m.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			m.kill()
		case <-m.done:
		}
	}()
	return m, nil
}

// prepare returns cfg rewritten to run on overlays and copies inside dir.
func prepare(ctx context.Context, cfg Config, dir string) (Config, error) {
	run := cfg
	run.Drives = append([]Drive(nil), cfg.Drives...)
	if cfg.Disk != "" {
		overlay := cfg.Overlay
		if overlay == "" {
			overlay = filepath.Join(dir, "disk.qcow2")
			if run.DiskCache == "" {
				run.DiskCache = "unsafe"
			}
		}
		var opts []string
		if cfg.OverlayClusterSize > 0 {
			opts = []string{"-o", fmt.Sprintf("cluster_size=%d", cfg.OverlayClusterSize)}
		}
		if err := createOverlay(ctx, cfg.Disk, cfg.DiskFormat, overlay, opts...); err != nil {
			return run, fmt.Errorf("Disk: %w", err)
		}
		run.Disk, run.DiskFormat = overlay, FormatQCOW2
	}
	for i, d := range run.Drives {
		if d.ReadOnly || d.Media == MediaCDROM {
			continue
		}
		overlay := d.Overlay
		if overlay == "" {
			overlay = filepath.Join(dir, fmt.Sprintf("drive%d.qcow2", i))
			if d.Cache == "" {
				run.Drives[i].Cache = "unsafe"
			}
		}
		if err := createOverlay(ctx, d.Path, d.Format, overlay); err != nil {
			return run, fmt.Errorf("Drives[%d]: %w", i, err)
		}
		run.Drives[i].Path, run.Drives[i].Format = overlay, FormatQCOW2
	}
	if cfg.Firmware == UEFI {
		// The variable store is written by the firmware: never the template.
		vars := filepath.Join(dir, "OVMF_VARS.fd")
		if err := copyFile(run.OVMFVars, vars); err != nil {
			return run, fmt.Errorf("OVMFVars: %w", err)
		}
		run.OVMFVars = vars
	}
	if run.SerialLog == "" {
		run.SerialLog = filepath.Join(dir, "serial.log")
	}
	return run, nil
}

// createOverlay makes a qcow2 overlay backed by image, which QEMU then only
// reads. The backing path is absolute so the overlay works from any dir.
func createOverlay(ctx context.Context, image, format, overlay string, opts ...string) error {
	abs, err := filepath.Abs(image)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return err
	}
	args := append([]string{"create", "-q", "-f", FormatQCOW2, "-F", format, "-b", abs}, opts...)
	out, err := exec.CommandContext(ctx, "qemu-img", append(args, overlay)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img create overlay: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// PID is QEMU's process id.
func (m *Machine) PID() int { return m.cmd.Process.Pid }

// Args is QEMU's argv (without the program name) as started, overlays and
// copies in place.
func (m *Machine) Args() []string { return append([]string(nil), m.args...) }

// SerialLog is the path of the serial console log.
func (m *Machine) SerialLog() string { return m.serialLog }

// Output is everything the guest wrote to its serial console so far.
func (m *Machine) Output() string { return m.con.String() }

// WaitFor waits until marker has appeared on the serial console (at any time
// since boot), QEMU exits, or ctx ends.
func (m *Machine) WaitFor(ctx context.Context, marker string) error {
	from := 0 // output before from has been searched (minus a marker's overlap)
	for {
		chunk, end, changed := m.con.since(from)
		if strings.Contains(chunk, marker) {
			return nil
		}
		from = max(from, end-len(marker)+1)
		select {
		case <-changed:
		case <-m.done:
			// Stdout is fully copied once Wait returned: a last look.
			if chunk, _, _ := m.con.since(from); strings.Contains(chunk, marker) {
				return nil
			}
			return fmt.Errorf("qemu exited before %q appeared: %w", marker, m.exitError())
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q on the serial console: %w", marker, ctx.Err())
		}
	}
}

// Wait waits until the guest powers off (QEMU exits) or ctx ends. A clean
// power-off returns nil.
func (m *Machine) Wait(ctx context.Context) error {
	select {
	case <-m.done:
		return m.exitError()
	case <-ctx.Done():
		return fmt.Errorf("waiting for power-off: %w", ctx.Err())
	}
}

func (m *Machine) exitError() error {
	if m.waitErr == nil {
		return nil
	}
	if msg := strings.TrimSpace(m.stderr.String()); msg != "" {
		return fmt.Errorf("%w: %s", m.waitErr, msg)
	}
	return m.waitErr
}

// Stop kills QEMU (by its PID, nothing else), waits for it to be reaped and
// removes the temp dir with the overlay. Paths the caller chose (SerialLog,
// Overlay) are kept.
func (m *Machine) Stop() error {
	m.stopOnce.Do(func() {
		m.kill()
		<-m.done
		m.stopErr = os.RemoveAll(m.dir)
	})
	return m.stopErr
}

func (m *Machine) kill() {
	select {
	case <-m.done:
	default:
		// os.Process signals through a pidfd, so a reaped and reused PID
		// is never hit.
		if err := m.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			m.stderr.Write([]byte("kill: " + err.Error() + "\n"))
		}
	}
}

func qemuBinary() (string, error) {
	p, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return "", errors.New("qemu-system-x86_64 not found in PATH (Debian package qemu-system-x86)")
	}
	return p, nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o600)
}
