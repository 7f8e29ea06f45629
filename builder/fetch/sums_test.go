package fetch

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/lablup/bainode/builder/internal/testsrv"
)

// TestSignedSHA256SUMS is Ubuntu's cloud-image layout: an image, SHA256SUMS
// listing it, and SHA256SUMS.gpg, a binary detached signature.
func TestSignedSHA256SUMS(t *testing.T) {
	image := testsrv.RandomBytes(11, 300<<10)
	sums := []byte(fmt.Sprintf("%s *focal-server-cloudimg-amd64.img\n%s *focal-server-cloudimg-arm64.img\n",
		testsrv.SumHex(image), testsrv.SumHex([]byte("arm"))))
	signer := testsrv.Key(t, "image signer")
	keyring, err := ParseKeyring(testsrv.PublicArmored(t, signer), Fingerprint(signer))
	if err != nil {
		t.Fatal(err)
	}
	srv := testsrv.NewFiles(t, map[string][]byte{
		"/focal/current/SHA256SUMS":                      sums,
		"/focal/current/SHA256SUMS.gpg":                  testsrv.DetachSign(t, signer, sums),
		"/focal/current/focal-server-cloudimg-amd64.img": image,
	})
	base := srv.URL + "/focal/current/"
	s, err := FetchSHA256SUMS(context.Background(), base, keyring, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Artifact(base, "focal-server-cloudimg-amd64.img")
	if err != nil {
		t.Fatal(err)
	}
	a.Kind = "image"
	res, err := Download(context.Background(), openTestCache(t), []Artifact{a}, testOptions())
	if err != nil || res.Artifacts[0].Size != int64(len(image)) {
		t.Fatalf("download: %+v, %v", res, err)
	}
	if _, err := s.Artifact(base, "jammy.img"); err == nil {
		t.Error("an unlisted file got an artifact")
	}
}

func TestBadSignaturesRejected(t *testing.T) {
	sums := []byte(testsrv.SumHex([]byte("img")) + "  a.img\n")
	signer, stranger := testsrv.Key(t, "signer"), testsrv.Key(t, "stranger")
	keyring := openpgp.EntityList{signer}
	sig := testsrv.DetachSign(t, signer, sums)

	if _, err := VerifySHA256SUMS(sums, sig, keyring); err != nil {
		t.Fatalf("good signature: %v", err)
	}
	var armored bytes.Buffer
	openpgp.ArmoredDetachSign(&armored, signer, bytes.NewReader(sums), nil)
	if _, err := VerifySHA256SUMS(sums, armored.Bytes(), keyring); err != nil {
		t.Errorf("good armored signature: %v", err)
	}
	tampered := bytes.Replace(sums, []byte("a.img"), []byte("b.img"), 1)
	cases := map[string]struct{ sums, sig []byte }{
		"tampered sums": {tampered, sig},
		"other signer":  {sums, testsrv.DetachSign(t, stranger, sums)},
		"no signature":  {sums, nil},
		"garbage":       {sums, []byte("not a signature")},
		"truncated":     {sums, sig[:len(sig)/2]},
	}
	for name, c := range cases {
		if _, err := VerifySHA256SUMS(c.sums, c.sig, keyring); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			mustContain(t, err.Error(), "SHA256SUMS")
		}
	}

	// Over HTTP: a server whose SHA256SUMS.gpg does not match fails the fetch.
	srv := testsrv.NewFiles(t, map[string][]byte{"/r/SHA256SUMS": tampered, "/r/SHA256SUMS.gpg": sig})
	if _, err := FetchSHA256SUMS(context.Background(), srv.URL+"/r", keyring, testOptions()); err == nil {
		t.Error("FetchSHA256SUMS accepted a tampered SHA256SUMS")
	} else {
		mustContain(t, err.Error(), srv.URL+"/r/SHA256SUMS", "bad signature")
	}
}

// TestUnsignedSHA256SUMS is python-build-standalone's layout: a release's
// SHA256SUMS, not signed.
func TestUnsignedSHA256SUMS(t *testing.T) {
	py := testsrv.RandomBytes(5, 100<<10)
	name := "cpython-3.12.8+20250106-x86_64-unknown-linux-gnu-install_only.tar.gz"
	sums := fmt.Sprintf("%s  %s\n%s  cpython-3.12.8+20250106-aarch64-apple-darwin-install_only.tar.gz\n", testsrv.SumHex(py), name, testsrv.SumHex(nil))
	srv := testsrv.NewFiles(t, map[string][]byte{"/download/20250106/SHA256SUMS": []byte(sums), "/download/20250106/" + name: py})
	s, err := FetchSHA256SUMS(context.Background(), srv.URL+"/download/20250106", nil, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Artifact(srv.URL+"/download/20250106", name)
	if err != nil || a.SHA256 != testsrv.SumHex(py) || a.URL != srv.URL+"/download/20250106/"+name {
		t.Fatalf("artifact %+v, %v", a, err)
	}
}

func TestParseSHA256SUMS(t *testing.T) {
	h := testsrv.SumHex([]byte("x"))
	s, err := ParseSHA256SUMS([]byte(h + " *a.img\r\n\n" + strings.ToUpper(h) + "  b c.tar.gz\n"))
	if err != nil || s["a.img"] != h || s["b c.tar.gz"] != h || len(s) != 2 {
		t.Errorf("parse: %v, %v", s, err)
	}
	for _, bad := range []string{"", "abc  a.img\n", h + "\n", h + "  a\n" + testsrv.SumHex(nil) + "  a\n"} {
		if _, err := ParseSHA256SUMS([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestEmbeddedKeys(t *testing.T) {
	for _, k := range []TrustedKey{DockerKey, NVIDIAKey, UbuntuCloudImageKey} {
		el, err := k.Keyring()
		if err != nil {
			t.Errorf("%s: %v", k.Name, err)
			continue
		}
		for _, e := range el {
			t.Logf("%s: %s %s", k.File, Fingerprint(e), e.PrimaryIdentity().Name)
		}
		if Fingerprint(el[0]) != k.Fingerprints[0] {
			t.Errorf("%s: first key %s, want %s", k.File, Fingerprint(el[0]), k.Fingerprints[0])
		}
	}
	docker, _ := DockerKey.Armored()
	if _, err := ParseKeyring(docker, NVIDIAFingerprint); err == nil {
		t.Error("the Docker key passed as NVIDIA's")
	}
	// Two armored blocks in one file: both are read.
	nvidia, _ := NVIDIAKey.Armored()
	el, err := ParseKeyring(append(append([]byte{}, docker...), nvidia...), "9dc8 5822 9fc7 dd38 854a  e2d8 8d81 803c 0ebf cd88", NVIDIAFingerprint)
	if err != nil || len(el) != 2 {
		t.Errorf("two blocks: %d keys, %v", len(el), err)
	}
	if _, err := ParseKeyring([]byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----\n")); err == nil {
		t.Error("an empty keyring was accepted")
	}
}
