package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lablup/bainode/builder/cpio"
)

// TestLoadConfigByMAC: without the config file, bainode.server= makes the
// agent fetch node.cpio for its NICs' MACs; the NIC bainoded does not know
// is skipped.
func TestLoadConfigByMAC(t *testing.T) {
	want := Config{Node: "gpu01", Server: "http://x", Token: "tok", Seed: "http://x/nocloud/gpu01/"}
	js, _ := json.Marshal(want)
	a := cpio.NewArchive()
	a.File(ConfigFile, 0o600, js)
	var body bytes.Buffer
	a.WriteTo(&body)
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path)
		if r.URL.Path != NodeConfigPath("52:54:00:12:34:56") {
			http.NotFound(w, r)
			return
		}
		w.Write(body.Bytes())
	}))
	defer srv.Close()
	net := t.TempDir()
	for nic, mac := range map[string]string{"lo": "00:00:00:00:00:00", "eth0": "52:54:00:aa:bb:cc", "eth1": "52:54:00:12:34:56"} {
		os.MkdirAll(filepath.Join(net, nic), 0o755)
		os.WriteFile(filepath.Join(net, nic, "address"), []byte(mac+"\n"), 0o644)
	}
	missing := filepath.Join(t.TempDir(), "deploy.json")
	got, err := LoadConfig(context.Background(), missing, "console=ttyS0 "+ServerArg+"="+srv.URL+"/ quiet\n", System{SysNet: net})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config %+v, want %+v", got, want)
	}
	if strings.Join(asked, " ") != "/deploy/52-54-00-aa-bb-cc/node.cpio /deploy/52-54-00-12-34-56/node.cpio" {
		t.Errorf("asked %v", asked)
	}

	// The file wins when present; neither file nor argument is an error.
	os.WriteFile(missing, []byte(`{"node":"local"}`), 0o600)
	if got, err := LoadConfig(context.Background(), missing, ServerArg+"="+srv.URL, System{SysNet: net}); err != nil || got.Node != "local" {
		t.Errorf("with the file: %+v, %v", got, err)
	}
	_, err = LoadConfig(context.Background(), missing+".no", "quiet", System{SysNet: net})
	if err == nil || !strings.Contains(err.Error(), ServerArg) {
		t.Errorf("no file, no argument: %v", err)
	}
}
