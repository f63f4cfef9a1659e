// Package promoterserver is the promoter executor plugin's transport: it
// speaks Argo's executor-plugin protocol (Argo Workflows v3.7; docs/architecture.md section 5). http.go
// checks the agent's token and the body's size, decodes the request
// (decode.go) and checks its app, environment and tag into a
// promoter.Request, the one place they are validated; jobs.go runs the
// promotion apart from the request within a reply budget; the reply, the
// log line and the metrics (metrics.go) are built from the typed outcome
// of promoter.Promote. config.go reads the YAML configuration, run.go
// serves until SIGTERM.
package promoterserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/plugins/executor"
)

// PluginName is the key of our arguments under template.plugin.
const PluginName = "promoter"

// Args are the arguments of a promote step.
type Args struct {
	App  string `json:"app"`
	From string `json:"from"`
	Tag  string `json:"tag"`
}

// ErrBadRequest is wrapped by every decoding error (a 400).
var ErrBadRequest = errors.New("bad request")

// request is what Decode reads of Argo's ExecuteTemplateArgs: the
// workflow's metadata and the template's name and plugin arguments. Argo
// sends the whole template, but decoding it into Argo's Template type (a
// field for everything any kind of step can hold) cost a fresh plugin
// process 3-5 ms of reflection on its first request, the only one most
// agent pods serve; the other fields are not ours to check.
type request struct {
	Workflow *executor.Workflow `json:"workflow"`
	Template *struct {
		Name   string       `json:"name"`
		Plugin *wfv1.Plugin `json:"plugin"`
	} `json:"template"`
}

// Decode parses an executor request. ours is false (and err nil) for a
// template that is not a promoter template: the caller replies {}.
func Decode(body []byte) (args executor.ExecuteTemplateArgs, promote Args, ours bool, err error) {
	var in request
	if err := json.Unmarshal(body, &in); err != nil {
		return args, promote, false, fmt.Errorf("%w: body is not an ExecuteTemplateArgs: %v", ErrBadRequest, err)
	}
	args.Workflow = in.Workflow
	if in.Template != nil {
		args.Template = &wfv1.Template{Name: in.Template.Name, Plugin: in.Template.Plugin}
	}
	if args.Template == nil {
		return args, promote, false, fmt.Errorf("%w: template is missing", ErrBadRequest)
	}
	if args.Template.Plugin == nil || len(args.Template.Plugin.Value) == 0 {
		return args, promote, false, nil
	}
	var plugins map[string]json.RawMessage
	if err := json.Unmarshal(args.Template.Plugin.Value, &plugins); err != nil {
		return args, promote, false, fmt.Errorf("%w: template.plugin is not a map: %v", ErrBadRequest, err)
	}
	raw, ok := plugins[PluginName]
	if !ok {
		return args, promote, false, nil
	}
	var body2 struct {
		Promote *Args `json:"promote"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body2); err != nil {
		return args, promote, true, fmt.Errorf("%w: plugin.%s: %v", ErrBadRequest, PluginName, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return args, promote, true, fmt.Errorf("%w: plugin.%s: trailing data", ErrBadRequest, PluginName)
	}
	if body2.Promote == nil {
		return args, promote, true, fmt.Errorf("%w: plugin.%s.promote is missing", ErrBadRequest, PluginName)
	}
	promote = *body2.Promote
	for _, f := range []struct{ name, v string }{{"app", promote.App}, {"from", promote.From}, {"tag", promote.Tag}} {
		if f.v == "" {
			return args, promote, true, fmt.Errorf("%w: plugin.%s.promote.%s is missing", ErrBadRequest, PluginName, f.name)
		}
	}
	return args, promote, true, nil
}
