package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ImageURLScheme prefixes an image artifact's URL: "docker://" + the
// reference as written in the site. Download does not take such URLs;
// PullImage does.
const ImageURLScheme = "docker://"

// ImageOptions tune PullImage.
type ImageOptions struct {
	// Name is the cache name of the tarball (required); bainode uses
	// payload.ImageArchiveName(ref).
	Name string
	// Digest pins the image manifest ("sha256:..."), as a lock records it
	// in Version: the image is then pulled by digest, whatever the tag
	// points at now, and still tagged ref in the tarball.
	Digest string
	// SHA256 pins the tarball's bytes (the lock's sha256). With it, a cache
	// hit costs no network at all; a pull that writes other bytes fails.
	SHA256 string
	// Options: Mirrors ("https://<registry>" origins), Client (its
	// Transport, for proxies), UserAgent and Progress are used.
	Options
}

// RegistryCredential logs in to one registry (a host[:port], "docker.io"
// for Docker Hub). Password may be a token.
type RegistryCredential struct {
	Registry, Username, Password string
}

// Keychain gives the credentials for a registry: the first of creds whose
// Registry matches, else the user's docker config (~/.docker/config.json,
// $DOCKER_CONFIG and its credential helpers), else anonymous.
func Keychain(creds ...RegistryCredential) authn.Keychain {
	return authn.NewMultiKeychain(credKeychain(creds), authn.DefaultKeychain)
}

type credKeychain []RegistryCredential

func (k credKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	for _, c := range k {
		reg, err := name.NewRegistry(c.Registry)
		if err == nil && reg.RegistryStr() == r.RegistryStr() {
			return &authn.Basic{Username: c.Username, Password: c.Password}, nil
		}
	}
	return authn.Anonymous, nil
}

// PullImage makes the image ref (for platform, "linux/amd64" if empty)
// present in the cache as a `docker load` tarball named o.Name and returns
// it as an Artifact of Kind "image": URL "docker://"+ref, Version the image
// manifest digest, SHA256 and Size those of the tarball. The tarball carries
// ref as its tag (for a tag reference) and is written to a temporary file,
// hashed on the way, and renamed into the cache only when complete.
//
// An image whose digest the cache already holds under o.Name is not
// downloaded again: resolving the digest costs one manifest request, and
// nothing at all when o.SHA256 pins a tarball the cache holds. Blobs are
// checked against their digests as they stream in. Credentials come from
// auth (nil: the user's docker config); a registry that refuses them is an
// error that says so.
func PullImage(ctx context.Context, c *Cache, ref, platform string, auth authn.Keychain, o ImageOptions) (Artifact, error) {
	opts := o.Options.withDefaults()
	a := Artifact{Name: o.Name, URL: ImageURLScheme + ref, Kind: "image", Version: o.Digest}
	if o.Name == "" {
		return a, fmt.Errorf("image %s: no cache name", ref)
	}
	if o.SHA256 != "" && !isHexSum(o.SHA256) {
		return a, fmt.Errorf("image %s: sha256 %q is not 64 hex digits", ref, o.SHA256)
	}
	tag, err := name.ParseReference(ref)
	if err != nil {
		return a, fmt.Errorf("image %s: %w", ref, err)
	}
	if platform == "" {
		platform = "linux/amd64"
	}
	plat, err := v1.ParsePlatform(platform)
	if err != nil {
		return a, fmt.Errorf("image %s: platform: %w", ref, err)
	}
	if auth == nil {
		auth = authn.DefaultKeychain
	}
	note := func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "fetch: "+format+"\n", args...)
		}
	}

	// A pinned tarball the cache holds: no network.
	if o.SHA256 != "" {
		if hit, err := c.imageHit(a, o.SHA256, o.Digest); err != nil || hit != nil {
			if hit != nil {
				note("cached %s (%s)", a.Name, humanBytes(hit.Size))
				return *hit, nil
			}
			return a, err
		}
	}

	src, err := pullReference(tag, o.Digest, opts.Mirrors)
	if err != nil {
		return a, fmt.Errorf("image %s: %w", ref, err)
	}
	transportRT := http.RoundTripper(http.DefaultTransport)
	if opts.Client != nil && opts.Client.Transport != nil {
		transportRT = opts.Client.Transport
	}
	img, err := remote.Image(src,
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(auth),
		remote.WithPlatform(*plat),
		remote.WithTransport(transportRT),
		remote.WithUserAgent(opts.UserAgent))
	if err != nil {
		return a, imageError(ref, src, err)
	}
	dg, err := img.Digest()
	if err != nil {
		return a, imageError(ref, src, err)
	}
	a.Version = dg.String()
	if o.Digest != "" && o.Digest != a.Version {
		return a, fmt.Errorf("image %s: the registry served manifest %s for pinned digest %s", ref, a.Version, o.Digest)
	}
	if old, ok := c.Lookup(a.Name); ok && old.Version == a.Version && old.Kind == "image" && (o.SHA256 == "" || o.SHA256 == old.SHA256) {
		if hit, err := c.imageHit(a, old.SHA256, a.Version); err != nil || hit != nil {
			if hit != nil {
				note("cached %s (%s, %s)", a.Name, a.Version, humanBytes(hit.Size))
				return *hit, nil
			}
			return a, err
		}
	}

	cf, err := img.ConfigFile()
	if err != nil {
		return a, imageError(ref, src, err)
	}
	if cf.Architecture != "" && cf.Architecture != plat.Architecture || cf.OS != "" && cf.OS != plat.OS {
		return a, fmt.Errorf("image %s: is %s/%s, not %s", ref, cf.OS, cf.Architecture, platform)
	}
	note("pulling %s (%s) from %s", ref, a.Version, src.Context().RegistryStr())
	tmp, err := c.blobTemp("image-*")
	if err != nil {
		return a, fmt.Errorf("image %s: %w", ref, err)
	}
	defer os.Remove(tmp.Name()) // no-op once put renamed it
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	err = tarball.Write(tag, img, cw)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return a, imageError(ref, src, err)
	}
	a.SHA256, a.Size = hex.EncodeToString(h.Sum(nil)), cw.n
	if o.SHA256 != "" && o.SHA256 != a.SHA256 {
		return a, &ChecksumError{Artifact: a.Name, URL: a.URL, Expected: o.SHA256, Actual: a.SHA256}
	}
	if err := c.put(tmp.Name(), a); err != nil {
		return a, fmt.Errorf("image %s: store: %w", ref, err)
	}
	note("pulled %s as %s (%s)", ref, a.Name, humanBytes(a.Size))
	return a, nil
}

// imageHit returns the cached tarball with this sha256 (indexed under a.Name
// with digest), nil if the cache lacks it; a corrupt one is removed.
func (c *Cache) imageHit(a Artifact, sum, digest string) (*Artifact, error) {
	_, err := c.verifyBlob(sum, 0, true)
	switch {
	case err == nil:
		fi, err := os.Stat(c.BlobPath(sum))
		if err != nil {
			return nil, err
		}
		a.SHA256, a.Size = sum, fi.Size()
		if digest != "" {
			a.Version = digest
		}
		return &a, c.index(a)
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case errors.Is(err, errCorrupt):
		return nil, c.remove(sum)
	default:
		return nil, fmt.Errorf("%s: %w", a.Name, err)
	}
}

// pullReference is where to pull tag from: by digest when pinned, and from
// a mirror when Mirrors maps "https://<registry>" (Docker Hub: also
// "https://docker.io") to another URL, whose path prefixes the repository.
func pullReference(tag name.Reference, digest string, mirrors map[string]string) (name.Reference, error) {
	repo := tag.Context()
	reg := repo.RegistryStr()
	origins := []string{"https://" + reg}
	if reg == name.DefaultRegistry {
		origins = append(origins, "https://docker.io", "https://registry-1.docker.io")
	}
	for _, origin := range origins {
		m := RewriteURL(origin, mirrors)
		if m == origin {
			continue
		}
		u, err := url.Parse(m)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("mirror %s for %s is not a URL", m, origin)
		}
		var nopts []name.Option
		if u.Scheme == "http" {
			nopts = append(nopts, name.Insecure)
		}
		path := strings.Trim(u.Path, "/")
		if path != "" {
			path += "/"
		}
		r, err := name.NewRepository(u.Host+"/"+path+repo.RepositoryStr(), nopts...)
		if err != nil {
			return nil, fmt.Errorf("mirror %s: %w", m, err)
		}
		repo = r
		break
	}
	if digest != "" {
		return repo.Digest(digest), nil
	}
	if repo == tag.Context() {
		return tag, nil
	}
	if _, ok := tag.(name.Digest); ok {
		return repo.Digest(tag.Identifier()), nil
	}
	return repo.Tag(tag.Identifier()), nil
}

// imageError says plainly when the registry refused the credentials.
func imageError(ref string, src name.Reference, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("image %s: registry %s refused the credentials (%d %s): check images.registries or `docker login %s`: %w",
			ref, src.Context().RegistryStr(), te.StatusCode, http.StatusText(te.StatusCode), src.Context().RegistryStr(), err)
	}
	return fmt.Errorf("image %s: %w", ref, err)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (w *countWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, err
}
