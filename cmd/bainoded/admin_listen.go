package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// defaultAdminListen keeps the admin API, and so admin tokens, on this host.
const defaultAdminListen = "127.0.0.1:8081"

// adminListenAddr parses --admin-listen: "unix:PATH" or HOST:PORT. A TCP
// address off loopback is refused without TLS, since bearer tokens would
// cross the network in clear.
func adminListenAddr(v string, tls bool) (network, addr string, err error) {
	if p, ok := strings.CutPrefix(v, "unix:"); ok {
		if p == "" {
			return "", "", errors.New("--admin-listen unix: needs a path")
		}
		return "unix", p, nil
	}
	host, _, err := net.SplitHostPort(v)
	if err != nil {
		return "", "", fmt.Errorf("--admin-listen %q: %v", v, err)
	}
	if !tls && !loopback(host) {
		return "", "", fmt.Errorf("--admin-listen %q is not on loopback: admin tokens would cross the network in clear; "+
			"use 127.0.0.1:PORT, [::1]:PORT or unix:PATH, or turn on TLS with --tls-cert and --tls-key", v)
	}
	return "tcp", v, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// listenOn opens a listener; a unix socket is made 0600 from the start
// (umask), replacing a stale socket file but nothing else.
func listenOn(network, addr string) (net.Listener, error) {
	if network != "unix" {
		return net.Listen(network, addr)
	}
	if fi, err := os.Lstat(addr); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", addr)
		}
		os.Remove(addr)
	}
	old := unix.Umask(0o177)
	ln, err := net.Listen("unix", addr)
	unix.Umask(old)
	return ln, err
}
