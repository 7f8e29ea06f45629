package render

import (
	"fmt"
	"slices"
	"strings"
)

// Cloud is a cloud metadata service's limit on user-data, in bytes of the
// file as bainode writes it (gzipped with seed.gzip), before any base64
// the API adds.
type Cloud struct {
	Name  string
	Limit int
}

// Clouds are the limits `--cloud NAME` checks. OpenStack counts 65,535
// bytes of base64, which is 49,149 bytes before it.
var Clouds = map[string]Cloud{
	"ec2":       {"AWS EC2", UserDataLimit},
	"azure":     {"Azure", 64 * 1024},
	"openstack": {"OpenStack Nova", 65535 / 4 * 3},
	"gcp":       {"GCP", 256 * 1024},
}

// CloudNames are the keys of Clouds, sorted.
func CloudNames() []string { return sortedKeys(Clouds) }

// ParseCloud looks a cloud up by name.
func ParseCloud(name string) (Cloud, error) {
	c, ok := Clouds[name]
	if !ok {
		return Cloud{}, fmt.Errorf("%q is not a cloud bainode knows; want one of %s", name, strings.Join(CloudNames(), ", "))
	}
	return c, nil
}

// Fit returns an error when f's user-data is larger than the cloud takes. It
// says by how much and names only remedies that bring it under: seed.gzip
// when the gzipped file would fit, seed.verifier: false when that fits,
// and always a baked image's thin seed or an #include of a private URL.
func (c Cloud) Fit(host string, f Files) error {
	n := len(f.UserData)
	if n <= c.Limit {
		return nil
	}
	size := commas(n) + " bytes"
	switch {
	case f.Gzipped:
		size += " gzipped"
	case f.GzipSize > 0:
		size += fmt.Sprintf(" (%s with seed.gzip)", commas(f.GzipSize))
	}
	msg := fmt.Sprintf("user-data is %s, over the %s bytes %s takes", size, commas(c.Limit), c.Name)
	if host != "" {
		msg = host + ": " + msg
	}
	if !f.Gzipped && f.GzipSize > 0 && f.GzipSize <= c.Limit {
		return fmt.Errorf("%s; set seed.gzip: true in the site file (every cloud-init unpacks gzipped user-data)", msg)
	}
	if f.LeanSize > 0 && f.LeanSize <= c.Limit {
		return fmt.Errorf("%s: the provisioning script and the verifier do not fit even gzipped. "+
			"Set seed.gzip: true and seed.verifier: false (%s bytes): the node then carries no verifier, and you check it with 'sudo bainode verify' there (it reads /etc/bainode/verify.env). Or: %s",
			msg, commas(f.LeanSize), tooBigAdvice)
	}
	if !f.Verifier {
		return fmt.Errorf("%s: the provisioning script does not fit even gzipped. %s", msg, tooBigAdvice)
	}
	return fmt.Errorf("%s: the provisioning script and the verifier do not fit even gzipped. %s", msg, tooBigAdvice)
}

// tooBigAdvice is what works when even gzipped user-data is too large.
const tooBigAdvice = "Bake an image with 'bainode bake' and write this node's thin seed for it with 'bainode seed --image-manifest IMAGE.json' (about 4 KB), " +
	"or serve this user-data from a private URL and give the instance a two-line user-data: '#include' and that URL"

// commas writes n with thousands separators.
func commas(n int) string {
	s := fmt.Sprint(n)
	var parts []string
	for len(s) > 3 {
		parts = append(parts, s[len(s)-3:])
		s = s[:len(s)-3]
	}
	parts = append(parts, s)
	slices.Reverse(parts)
	return strings.Join(parts, ",")
}
