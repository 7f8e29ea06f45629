//go:build !linux

package iso

func tmpfsDirs() []string { return nil }
