//go:build !linux

package deploy

import (
	"errors"
	"os"
)

func zeroRange(f *os.File, off, n int64, _ bool) error { return writeZeros(f, off, n) }

func reboot() error      { return errors.New("reboot: only on Linux") }
func ejectMedium(System) {}
