// Package testsrv holds the loopback servers and fixtures that the
// builder's tests share: a static file server, a container registry and
// OpenPGP signing. Every server is an httptest server on 127.0.0.1.
// Only _test.go files import it.
package testsrv

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
)

// RandomBytes is n pseudo-random bytes, the same for the same seed.
func RandomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// SumHex is the hex sha256 of b.
func SumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
