package fetch

import (
	"github.com/lablup/bainode/overlays"

	"bytes"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// The public keys bainode trusts, as published by their owners. A key file
// is only believed if every primary key in it has one of the fingerprints
// below; the fingerprints come from the owners' install documentation (see
// shared research cloud-init-facts §8), so swapping a file cannot widen trust.
//
// The keys are data shared with what render puts on nodes.
var keyFiles = overlays.FS

// Pinned primary-key fingerprints.
const (
	DockerFingerprint                  = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88" // Docker Release (CE deb) <docker@docker.com>
	NVIDIAFingerprint                  = "C95B321B61E88C1809C4F759DDCAE044F796ECB0" // NVIDIA CORPORATION (Open Source Projects)
	UbuntuCloudImageFingerprint        = "D2EB44626FDDC30B513D5BB71A5D6C4C7DB87C81" // UEC Image Automatic Signing Key
	UbuntuCloudImageBuilderFingerprint = "4A3CE3CD565D7EB5C810E2B97FF3F408476CF100" // Ubuntu Cloud Image Builder
)

// TrustedKey is an embedded key file and the fingerprints it may contain.
type TrustedKey struct {
	Name         string
	File         string // under keys/
	Fingerprints []string
}

var (
	// DockerKey signs download.docker.com/linux/ubuntu InRelease.
	DockerKey = TrustedKey{"Docker Release (CE deb)", "docker.asc", []string{DockerFingerprint}}
	// NVIDIAKey signs the nvidia.github.io/libnvidia-container repository.
	// The file holds the primary key only: its one subkey expired in 2021
	// (apt refuses what it signed), and without it user-data is 1.1 KB
	// smaller.
	NVIDIAKey = TrustedKey{"NVIDIA container toolkit", "nvidia-container-toolkit.asc", []string{NVIDIAFingerprint}}
	// UbuntuCloudImageKey signs cloud-images.ubuntu.com SHA256SUMS. Ubuntu's
	// keyring holds two keys; the file may carry either or both.
	UbuntuCloudImageKey = TrustedKey{"Ubuntu cloud images", "ubuntu-cloudimage.asc",
		[]string{UbuntuCloudImageFingerprint, UbuntuCloudImageBuilderFingerprint}}
)

// Armored returns the key file as embedded, e.g. to write into cloud-init's
// apt sources so the node trusts the same key.
func (k TrustedKey) Armored() ([]byte, error) {
	b, err := keyFiles.ReadFile("keys/" + k.File)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", k.Name, err)
	}
	return b, nil
}

// Keyring parses the embedded key file and checks its fingerprints.
func (k TrustedKey) Keyring() (openpgp.EntityList, error) {
	b, err := k.Armored()
	if err != nil {
		return nil, err
	}
	el, err := ParseKeyring(b, k.Fingerprints...)
	if err != nil {
		return nil, fmt.Errorf("key %s (keys/%s): %w", k.Name, k.File, err)
	}
	return el, nil
}

// ParseKeyring reads an armored or binary OpenPGP keyring. With fingerprints
// given, every primary key must have one of them.
func ParseKeyring(data []byte, fingerprints ...string) (openpgp.EntityList, error) {
	el, err := readKeys(data)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if len(el) == 0 {
		return nil, fmt.Errorf("keyring holds no key")
	}
	if len(fingerprints) == 0 {
		return el, nil
	}
	allowed := map[string]bool{}
	for _, f := range fingerprints {
		allowed[normFingerprint(f)] = true
	}
	for _, e := range el {
		if fp := Fingerprint(e); !allowed[fp] {
			return nil, fmt.Errorf("keyring: key %s is not one of the pinned fingerprints %s", fp, strings.Join(fingerprints, ", "))
		}
	}
	return el, nil
}

// Fingerprint is the entity's primary-key fingerprint in upper-case hex.
func Fingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

func normFingerprint(f string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(f, "0x"), " ", ""))
}

// readKeys reads a binary keyring or one or more armored key blocks (ReadArmoredKeyRing
// alone stops after the first block, and key files are often concatenated).
func readKeys(data []byte) (openpgp.EntityList, error) {
	const begin, end = "-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----END PGP PUBLIC KEY BLOCK-----"
	if !bytes.Contains(data, []byte(begin)) {
		return openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	var el openpgp.EntityList
	for rest := data; ; {
		i := bytes.Index(rest, []byte(begin))
		if i < 0 {
			return el, nil
		}
		rest = rest[i:]
		j := bytes.Index(rest, []byte(end))
		if j < 0 {
			return nil, fmt.Errorf("armored key block without end line")
		}
		block := rest[:j+len(end)]
		rest = rest[j+len(end):]
		keys, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(block))
		if err != nil {
			return nil, err
		}
		el = append(el, keys...)
	}
}
