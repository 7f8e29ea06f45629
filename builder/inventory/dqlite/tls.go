package dqlite

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// TLS holds the configurations cluster traffic is encrypted with: Listen
// for connections from peers and clients, Dial for connections to them.
type TLS struct {
	Listen, Dial *tls.Config
}

// LoadTLS reads a member's certificate, its key and the cluster CA (all
// PEM) and returns mutual-TLS configurations: a peer must present a
// certificate signed by the CA, and a dialled member's certificate must
// name the host of the address dialled. address, when not empty, is this
// member's HOST:PORT; a certificate that does not cover it is refused now
// rather than by every peer later.
func LoadTLS(certFile, keyFile, caFile, address string) (*TLS, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--cluster-cert %s, --cluster-key %s: %w", certFile, keyFile, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("--cluster-cert %s: %w", certFile, err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--cluster-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--cluster-ca %s: no PEM certificate in it", caFile)
	}
	inter := x509.NewCertPool()
	for _, c := range pair.Certificate[1:] {
		if ic, err := x509.ParseCertificate(c); err == nil {
			inter.AddCert(ic)
		}
	}
	// A member acts as server and client, so its certificate must be valid
	// for both.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("--cluster-cert %s is not valid under --cluster-ca %s: %w", certFile, caFile, err)
	}
	if address != "" && address[0] != '@' {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return nil, fmt.Errorf("--cluster-address %q: %w", address, err)
		}
		if err := leaf.VerifyHostname(host); err != nil {
			return nil, fmt.Errorf("--cluster-cert %s does not name %s, the host of --cluster-address, so peers would refuse it: %w",
				certFile, host, err)
		}
	}
	listen := &tls.Config{
		MinVersion:   tls.VersionTLS13, // only bainoded and go-dqlite talk here
		Certificates: []tls.Certificate{pair},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	// No ServerName: go-dqlite then sets it to the host of each address it
	// dials, so a member is checked against its own address.
	dial := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{pair},
		RootCAs:            pool,
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
	}
	return &TLS{Listen: listen, Dial: dial}, nil
}

// errHalfTLS is returned when only some of the cluster TLS files are given.
var errHalfTLS = errors.New("--cluster-cert, --cluster-key and --cluster-ca go together: give all three or none")

// TLSFiles checks that the three files are all given or all empty and loads
// them; it returns nil, nil when none is given.
func TLSFiles(certFile, keyFile, caFile, address string) (*TLS, error) {
	n := 0
	for _, f := range []string{certFile, keyFile, caFile} {
		if f != "" {
			n++
		}
	}
	switch n {
	case 0:
		return nil, nil
	case 3:
		return LoadTLS(certFile, keyFile, caFile, address)
	}
	return nil, errHalfTLS
}
