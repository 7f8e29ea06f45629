package render

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/lablup/bainode/builder/internal/testenv"
	"github.com/lablup/bainode/builder/spec"
	"github.com/lablup/bainode/overlays"
	"github.com/lablup/bainode/templates"
)

// Stripping comments changes no command: bash prints a function made of
// the whole script the same way (declare -f drops comments but keeps
// here-documents), and shellcheck finds nothing in the stripped script.
func TestStripShell(t *testing.T) {
	bash := testenv.Need(t, "bash")
	sc := testenv.Need(t, "shellcheck")
	for _, f := range staticFiles {
		if !f.strip {
			continue
		}
		src, err := fs.ReadFile(overlays.FS, f.src)
		if err != nil {
			t.Fatal(err)
		}
		got := stripShell(src)
		if len(got) >= len(src) {
			t.Errorf("%s: stripping saved nothing", f.src)
		}
		norm := func(b []byte) string {
			body := string(b)
			body = body[strings.IndexByte(body, '\n')+1:] // the #! line
			cmd := exec.Command(bash, "-O", "extglob", "-c", "f() {\n"+body+"\n}\ndeclare -f f")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: bash: %v\n%s", f.src, err, out)
			}
			return string(out)
		}
		if a, b := norm(src), norm(got); a != b {
			t.Errorf("%s: stripped script parses differently:\n%s", f.src, firstLineDiff(a, b))
		}
		p := filepath.Join(t.TempDir(), filepath.Base(f.src))
		os.WriteFile(p, got, 0o755)
		if out, err := exec.Command(bash, "-n", p).CombinedOutput(); err != nil {
			t.Errorf("%s: bash -n: %v\n%s", f.src, err, out)
		}
		if out, err := exec.Command(sc, "-x", p).CombinedOutput(); err != nil {
			t.Errorf("%s: shellcheck on the stripped script: %v\n%s", f.src, err, out)
		}
	}
	// A here-document keeps its comment lines and blank lines.
	in := "#!/bin/sh\n# c\n\ncat <<'EOF'\n# kept\n\nEOF\n  # gone\necho x # stays\n"
	if got, want := string(stripShell([]byte(in))), "#!/bin/sh\ncat <<'EOF'\n# kept\n\nEOF\necho x # stays\n"; got != want {
		t.Errorf("stripShell:\n%q\nwant\n%q", got, want)
	}
}

func firstLineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range x {
		if i >= len(y) || x[i] != y[i] {
			var yl string
			if i < len(y) {
				yl = y[i]
			}
			return fmt.Sprintf("line %d: %q\n   vs %q", i+1, x[i], yl)
		}
	}
	return "the stripped script is longer"
}

func TestSizeWarning(t *testing.T) {
	text := []byte(strings.Repeat("write_files: []\n", 2000))
	if got, want := SizeWarning("n1", Files{UserData: text, GzipSize: 900}), "n1: user-data is 32,000 bytes (900 with seed.gzip), over the 16,384 bytes AWS EC2 takes; set seed.gzip: true in the site file (every cloud-init unpacks gzipped user-data)"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	noise := make([]byte, 20000)
	rand.New(rand.NewSource(1)).Read(noise)
	if got, want := SizeWarning("n1", Files{UserData: noise, Gzipped: true, Verifier: true}), "n1: user-data is 20,000 bytes gzipped, over the 16,384 bytes AWS EC2 takes: the provisioning script and the verifier do not fit even gzipped. "+tooBigAdvice; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got, want := SizeWarning("n1", Files{UserData: text, GzipSize: 20000, Verifier: true, LeanSize: 17000}), "n1: user-data is 32,000 bytes (20,000 with seed.gzip), over the 16,384 bytes AWS EC2 takes: the provisioning script and the verifier do not fit even gzipped. "+tooBigAdvice; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Without the verifier it would fit: that is offered, with its size.
	if got, want := SizeWarning("n1", Files{UserData: noise, Gzipped: true, Verifier: true, LeanSize: 9000}), "n1: user-data is 20,000 bytes gzipped, over the 16,384 bytes AWS EC2 takes: the provisioning script and the verifier do not fit even gzipped. "+
		"Set seed.gzip: true and seed.verifier: false (9,000 bytes): the node then carries no verifier, and you check it with 'sudo bainode verify' there (it reads /etc/bainode/verify.env). Or: "+tooBigAdvice; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Already without it: only the script is named.
	if got, want := SizeWarning("n1", Files{UserData: noise, Gzipped: true}), "n1: user-data is 20,000 bytes gzipped, over the 16,384 bytes AWS EC2 takes: the provisioning script does not fit even gzipped. "+tooBigAdvice; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := SizeWarning("n1", Files{UserData: text[:UserDataLimit]}); got != "" {
		t.Errorf("at the limit: %s", got)
	}
}

// Every file shipped as is reaches the node as the overlay file, scripts
// with comments and the sections their env file turns off stripped, in
// both layouts.
func TestStaticFilesRoundTrip(t *testing.T) {
	r, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := fs.ReadFile(templates.FS, "examples/cluster.yaml")
	for _, gzon := range []bool{false, true} {
		s, err := spec.Parse("cluster.yaml", b)
		if err != nil {
			t.Fatal(err)
		}
		s.Seed.Gzip = gzon
		f, err := r.Node(s, &s.Nodes[1])
		if err != nil {
			t.Fatal(err)
		}
		ud := f.UserData
		if gzon {
			zr, err := gzip.NewReader(bytes.NewReader(ud))
			if err != nil {
				t.Fatal(err)
			}
			ud, _ = io.ReadAll(zr)
		}
		var c struct {
			WriteFiles []struct{ Path, Encoding, Content string } `yaml:"write_files"`
		}
		if err := yaml.Unmarshal(ud, &c); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, wf := range c.WriteFiles {
			if wf.Encoding == "gz+b64" {
				raw, err := base64.StdEncoding.DecodeString(wf.Content)
				if err != nil {
					t.Fatal(err)
				}
				zr, err := gzip.NewReader(bytes.NewReader(raw))
				if err != nil {
					t.Fatal(err)
				}
				p, _ := io.ReadAll(zr)
				wf.Content = string(p)
			} else if wf.Encoding != "" {
				t.Errorf("%s: encoding %s", wf.Path, wf.Encoding)
			}
			got[wf.Path] = wf.Content
		}
		for _, sf := range staticFiles {
			want, _ := fs.ReadFile(overlays.FS, sf.src)
			if sf.env != "" {
				secs, err := parseSections(sf.src, want)
				if err != nil {
					t.Fatal(err)
				}
				if want, err = cutSections(sf.src, want, secs, envValues(got[sf.env])); err != nil {
					t.Fatal(err)
				}
			}
			if sf.strip {
				want = stripShell(want)
			}
			if g, ok := got[sf.dst]; !ok || g != string(want) {
				t.Errorf("gzip=%v: %s does not read back as overlays/%s (%v)", gzon, sf.dst, sf.src, ok)
			}
		}
	}
}
