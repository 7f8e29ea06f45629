package main

import (
	"github.com/lablup/bainode/builder/render"
	"github.com/lablup/bainode/builder/serve"
)

// newRenderer is bainode's real renderer: what nodes fetch is what
// `bainode render` writes for them.
func newRenderer(version string) (serve.Renderer, serve.Validator, error) {
	r, err := render.New(render.Options{Version: version})
	if err != nil {
		return nil, nil, err
	}
	return serve.SiteRenderer(r), serve.ValidateSite, nil
}
