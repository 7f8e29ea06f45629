package render_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/internal/testenv"
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/spec"
)

// Every registry token validation accepts renders, and the provisioning
// script's `read -r reg user token` reads it back exactly: '#', quotes,
// backslashes, $(...) and non-ASCII are data there, not syntax.
func TestRegistryTokenSink(t *testing.T) {
	bash := testenv.Need(t, "bash")
	tokens := []string{"pa#ss", "pässwörd", `q'uo"te\`, "$(touch$IFS.x)", `back\slash\`, "ends#"}
	var b strings.Builder
	b.WriteString("version: 1\nimages:\n  registries:\n")
	for i, tok := range tokens {
		b.WriteString("    - {registry: cr" + string(rune('a'+i)) + ".example.com, username: robot, token: " + yamlQuote(tok) + "}\n")
	}
	b.WriteString("nodes: [{hostname: n1}]\n")
	s, err := spec.Parse("s.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.Node(s, &s.Nodes[0])
	if err != nil {
		t.Fatalf("a token validation accepts does not render: %v", err)
	}
	content, ok := fileContent(t, parseUserData(t, f.UserData), "/etc/bainode/registry-auth")
	if !ok {
		t.Fatal("no registry-auth file")
	}
	p := filepath.Join(t.TempDir(), "registry-auth")
	os.WriteFile(p, []byte(content), 0o600)
	out, err := exec.Command(bash, "-c", `while read -r reg user token; do printf '%s\0' "$token"; done <"$1"`, "bash", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if strings.Join(got, "\n") != strings.Join(tokens, "\n") {
		t.Errorf("read back %q\nwant      %q", got, tokens)
	}
}

// yamlQuote is a JSON string, which YAML reads as a double-quoted scalar.
func yamlQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
