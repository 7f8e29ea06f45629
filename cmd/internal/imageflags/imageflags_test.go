package imageflags

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestImages(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want map[string]string
		err  string
	}{
		{nil, map[string]string{}, ""},
		{[]string{"--image", "agent=a.raw.zst", "--image", "manager=m.raw.zst"}, map[string]string{"agent": "a.raw.zst", "manager": "m.raw.zst"}, ""},
		{[]string{"--image", "agent.raw.zst"}, nil, `--image "agent.raw.zst": want ROLE=FILE.raw.zst`},
		{[]string{"--image", "=a.raw.zst"}, nil, "want ROLE=FILE"},
		{[]string{"--image", "agent=a.raw.zst", "--image", "agent=b.raw.zst"}, nil, "role agent is given twice (a.raw.zst and b.raw.zst)"},
	} {
		var got map[string]string
		var err error
		app := &cli.App{Flags: Flags("image mode", ""), Action: func(c *cli.Context) error {
			got, err = Images(c)
			return nil
		}}
		if runErr := app.Run(append([]string{"x"}, tc.args...)); runErr != nil {
			t.Fatal(runErr)
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.args, got, err, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%q: %s=%s, want %s", tc.args, k, got[k], v)
			}
		}
	}
}
