package artifacts

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/lablup/bainode/builder/internal/testsrv"
)

// Every server here listens on 127.0.0.1 (httptest).

// deb is a package of a fake apt repository.
type deb struct{ name, version, depends string }

func (d deb) file() string {
	v := d.version
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	return fmt.Sprintf("%s_%s_amd64.deb", d.name, v)
}

// aptRepo serves a signed repository under base: dists style
// (base/dists/SUITE/stable/binary-amd64/Packages, debs in base/pool/) or,
// with suite "/", flat (base/Packages, debs in base/). It returns each
// .deb's path and sha256.
func serveAptRepo(t *testing.T, f *testsrv.Files, base, suite string, signer *openpgp.Entity, debs []deb) map[string]string {
	t.Helper()
	sums := map[string]string{}
	var pk strings.Builder
	for i, d := range debs {
		body := testsrv.RandomBytes(uint64(len(base)*100+i), 1000+i*13)
		filename := "pool/stable/" + d.file()
		if suite == "/" {
			filename = "./" + d.file()
		}
		p := base + "/" + strings.TrimPrefix(filename, "./")
		f.Put(p, body)
		sums[p] = testsrv.SumHex(body)
		fmt.Fprintf(&pk, "Package: %s\nVersion: %s\nArchitecture: amd64\n", d.name, d.version)
		if d.depends != "" {
			fmt.Fprintf(&pk, "Depends: %s\n", d.depends)
		}
		fmt.Fprintf(&pk, "Filename: %s\nSize: %d\nSHA256: %s\n\n", filename, len(body), testsrv.SumHex(body))
	}
	dist, index := base+"/dists/"+suite+"/", "stable/binary-amd64/Packages"
	if suite == "/" {
		dist, index = base+"/", "Packages"
	}
	packages := []byte(pk.String())
	f.Put(dist+index, packages)
	rel := fmt.Sprintf("Origin: Test\nSuite: %s\nDate: %s\nArchitectures: amd64\nComponents: stable\nSHA256:\n %s %d %s\n",
		suite, time.Now().UTC().Format(time.RFC1123), testsrv.SumHex(packages), len(packages), index)
	f.Put(dist+"InRelease", testsrv.ClearSign(t, signer, rel))
	return sums
}
