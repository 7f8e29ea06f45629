package gpustub

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Other is a kernel release no machine runs: stand-in modules stamped with
// it are "for another kernel".
const Other = "6.1.0-99-bainode"

// Package names of the stand-ins that BuildDebs makes (k is the kernel).
const (
	UserSpace   = "bainode-stub-userspace"   // the driver's user space; recommends the next
	Recommended = "bainode-stub-recommended" // must stay out: NVIDIA_NO_RECOMMENDS
	Wrong       = "bainode-stub-wrong"       // DKMS-like: modules for k, stamped Other
	NewKernel   = "bainode-stub-newkernel"   // pulls in a "kernel" Other, modules only for it
)

// Precompiled is the stand-in for the precompiled module package of
// kernel k, whose modules match k; Headers the stand-in headers of k.
func Precompiled(k string) string { return "bainode-stub-modules-" + k }
func Headers(k string) string     { return "bainode-stub-headers-" + k }

// BuildDebs builds the stand-in driver packages for kernel k into dir,
// with modules compiled against k's headers (cached: see Modules), and
// returns their paths.
func BuildDebs(ctx context.Context, dir, k string) ([]string, error) {
	match, err := Modules(ctx, k, k)
	if err != nil {
		return nil, err
	}
	wrong, err := Modules(ctx, k, Other)
	if err != nil {
		return nil, err
	}
	mods := func(kernel, dir string) map[string]string {
		m := map[string]string{}
		for _, n := range Names {
			m["lib/modules/"+kernel+"/updates/dkms/"+n+".ko"] = filepath.Join(dir, n+".ko")
		}
		return m
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	fake := filepath.Join(dir, ".vmlinuz")
	if err := os.WriteFile(fake, []byte("stand-in kernel: never booted\n"), 0o644); err != nil {
		return nil, err
	}
	defer os.Remove(fake)
	debs := []Deb{
		{Name: UserSpace, Version: "1.0", Recommends: Recommended},
		{Name: Recommended, Version: "1.0"},
		{Name: Precompiled(k), Version: "1.0", Arch: "amd64", Files: mods(k, match), Postinst: "depmod -a " + k},
		{Name: Wrong, Version: "1.0", Arch: "amd64", Files: mods(k, wrong), Postinst: "depmod -a " + k},
		{Name: Headers(k), Version: "1.0"},
		{Name: NewKernel, Version: "1.0", Arch: "amd64", Depends: "bainode-stub-kernel", Files: mods(Other, wrong)},
		{Name: "bainode-stub-kernel", Version: "1.0", Arch: "amd64", Files: map[string]string{"boot/vmlinuz-" + Other: fake}},
	}
	var out []string
	for _, d := range debs {
		p, err := d.Build(ctx, dir)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// DriverChoice is what a provision.env gets appended (a later line wins
// when the script sources it) to pick stand-ins: precompiled and dkms are
// the package lists (use the plan's kernel word for k), kernelHold the
// target's.
func DriverChoice(precompiled, dkms, kernelHold, kernelWord string) string {
	return fmt.Sprintf(`# the test's driver choice
NVIDIA_DRIVER_PACKAGES=%s
NVIDIA_PRECOMPILED_PACKAGES='%s'
NVIDIA_DKMS_PACKAGES='%s'
NVIDIA_NO_RECOMMENDS=1
NVIDIA_COMPONENTS=
KERNEL_HOLD='%s'
KERNEL_WORD='%s'
CUDA_PACKAGES=
TOOLKIT=0
`, UserSpace, precompiled, dkms, kernelHold, kernelWord)
}
