package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

func clusterCertCommand() *cli.Command {
	return &cli.Command{
		Name:  "cluster-cert",
		Usage: "make the cluster CA (once) and a certificate for one member",
		Description: `Members encrypt cluster traffic with mutual TLS and accept only peers whose
certificate the cluster CA signed. The first run creates DIR/ca.crt and
DIR/ca.key; later runs reuse them. Each run writes OUT/NAME.crt and
OUT/NAME.key for one member. The certificate names NAME and every --ip and
--dns given; it must name the host of the member's --cluster-address.
Key files are written 0600; nothing is overwritten.

Give each member its certificate, its key and ca.crt (never ca.key):
  bainoded ... --cluster-cert NAME.crt --cluster-key NAME.key --cluster-ca ca.crt

Example:
  bainoded cluster-cert --ca-dir ./cluster-ca --name bn1 --ip 10.0.0.1`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ca-dir", Required: true, Usage: "`DIR` of ca.crt and ca.key, created if missing"},
			&cli.StringFlag{Name: "name", Required: true, Usage: "member `NAME`: a host name or IP, used for the file names and the certificate"},
			&cli.StringSliceFlag{Name: "ip", Usage: "`IP` the certificate is valid for (repeatable)"},
			&cli.StringSliceFlag{Name: "dns", Usage: "DNS `NAME` the certificate is valid for (repeatable)"},
			&cli.StringFlag{Name: "out", Usage: "`DIR` for NAME.crt and NAME.key (default: --ca-dir)"},
			&cli.DurationFlag{Name: "valid", Value: 5 * 365 * 24 * time.Hour, Usage: "validity `D` of the member certificate"},
		},
		Action: clusterCert,
	}
}

func clusterCert(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	name := c.String("name")
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\ \t\n") || strings.HasPrefix(name, "ca.") {
		return fmt.Errorf("--name %q: want a host name or IP", name)
	}
	var ips []net.IP
	var dns []string
	if ip := net.ParseIP(name); ip != nil {
		ips = append(ips, ip)
	} else {
		dns = append(dns, name)
	}
	for _, s := range c.StringSlice("ip") {
		ip := net.ParseIP(s)
		if ip == nil {
			return fmt.Errorf("--ip %q is not an IP address", s)
		}
		ips = append(ips, ip)
	}
	dns = append(dns, c.StringSlice("dns")...)
	caDir, out := c.String("ca-dir"), c.String("out")
	if out == "" {
		out = caDir
	}
	certPath, keyPath := filepath.Join(out, name+".crt"), filepath.Join(out, name+".key")
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists; remove it first to issue a new one", p)
		}
	}
	ca, caKey, created, err := loadOrCreateCA(caDir)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(c.App.Writer, "created the cluster CA %s (keep %s secret, and off the members)\n",
			filepath.Join(caDir, "ca.crt"), filepath.Join(caDir, "ca.key"))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour), // tolerate clocks a little behind
		NotAfter:     now.Add(c.Duration("valid")),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// Members are servers to their peers and clients of them.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    dns,
		IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := writeAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	if err := writeAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "wrote %s and %s\n", certPath, keyPath)
	return nil
}

// loadOrCreateCA reads DIR/ca.crt and DIR/ca.key, or makes them.
func loadOrCreateCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, bool, error) {
	certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	if errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist) {
		return createCA(dir)
	}
	if cerr != nil {
		return nil, nil, false, fmt.Errorf("--ca-dir: %w", cerr)
	}
	if kerr != nil {
		return nil, nil, false, fmt.Errorf("--ca-dir: %w", kerr)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, false, fmt.Errorf("--ca-dir %s: ca.crt or ca.key is not PEM", dir)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, false, fmt.Errorf("%s: %w", certPath, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, false, fmt.Errorf("%s: %w", keyPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, false, fmt.Errorf("%s does not belong to %s", keyPath, certPath)
	}
	return cert, key, false, nil
}

func createCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, bool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, false, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "bainoded cluster CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(20 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, false, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, false, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, false, err
	}
	// The key first: a ca.crt without its key would block later runs.
	if err := writeAtomic(filepath.Join(dir, "ca.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, nil, false, err
	}
	if err := writeAtomic(filepath.Join(dir, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, false, err
	}
	return cert, key, true, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// writeAtomic writes a temporary file with mode perm next to path and
// renames it over path, so readers never see half a file and a key never
// exists with a wider mode.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
