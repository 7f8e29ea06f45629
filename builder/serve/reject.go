package serve

import (
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/lablup/bainode/builder/spec"
)

// siteRejection is the 400 answer to a site or node that does not validate
// or render. Error is the text an operator reads (file:line:col lines);
// Problems are the same, for clients that name the file they read. A
// Validator's error that is not a *spec.Error has no problems.
type siteRejection struct {
	Error    string         `json:"error"`
	Problems []spec.Problem `json:"problems,omitempty"`
}

// rejectSite answers 400 with the validator's problems.
func rejectSite(w http.ResponseWriter, r *http.Request, err error) {
	out := siteRejection{Error: err.Error()}
	var se *spec.Error
	if errors.As(err, &se) {
		out.Problems = se.Problems
	}
	reject(w, r, out)
}

// rejectRender answers 400 with the nodes the site cannot render. A
// node's problems keep their field but lose their position: they are in
// the site with the node merged in, not in the pushed file. Its warnings
// are left out of the problems: the site's own passed validation, and the
// errors are why the node failed.
func rejectRender(w http.ResponseWriter, r *http.Request, errs []*renderError) {
	var out siteRejection
	var text []string
	for _, re := range errs {
		text = append(text, re.Error())
		var se *spec.Error
		if !errors.As(re.err, &se) {
			out.Problems = append(out.Problems, spec.Problem{Msg: "rendering node " + re.host + ": " + re.err.Error()})
			continue
		}
		for _, p := range se.Problems {
			if p.Severity == spec.SeverityError {
				out.Problems = append(out.Problems, spec.Problem{Path: p.Path, Msg: "rendering node " + re.host + ": " + p.Msg})
			}
		}
	}
	out.Error = strings.Join(text, "\n")
	reject(w, r, out)
}

func reject(w http.ResponseWriter, r *http.Request, out siteRejection) {
	if !acceptsProblems(r) {
		http.Error(w, out.Error, http.StatusBadRequest)
		return
	}
	writeJSONAs(w, http.StatusBadRequest, spec.ProblemsMediaType, out)
}

// acceptsProblems reports whether the request's Accept lists spec.ProblemsMediaType.
func acceptsProblems(r *http.Request) bool {
	for _, h := range r.Header.Values("Accept") {
		for _, part := range strings.Split(h, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == spec.ProblemsMediaType {
				return true
			}
		}
	}
	return false
}
