// Package localargo runs the pipeline of workflows/ on this machine, for
// the demo: an Argo CD hook is rendered from the app's chart values as Helm
// renders it, its WorkflowTemplate is walked as Argo's controller walks it
// (Argo's own code substitutes every parameter and expression: the steps'
// order, `when`s, outputs and the exit handler come from the templates),
// each container runs as a local process of the real binary with the pod's
// volumes as folders, and each plugin step is an HTTP call to the real
// promoter with the body Argo's agent sends.
//
// It covers what the pipeline's templates use: container, steps, plugin and
// suspend templates, templateRef, `when`, parameters (inputs, outputs by
// path or expression, global outputs), onExit, emptyDir, Secret and
// ConfigMap volumes. Retries are not run: a step that fails fails.
package localargo

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/slipway-deploy/slipway/internal/testsupport/helmhook"
)

// Argo CD's hook annotations.
const (
	HookAnnotation = "argocd.argoproj.io/hook"
	WaveAnnotation = "argocd.argoproj.io/sync-wave"
)

// Hook phases, in the order Argo CD runs them (SyncFail only when the sync
// failed).
const (
	PreSync  = "PreSync"
	Sync     = "Sync"
	PostSync = "PostSync"
	SyncFail = "SyncFail"
)

var phaseOrder = []string{PreSync, Sync, PostSync, SyncFail}

// Pipeline is workflows/: the WorkflowTemplates and the hooks.
type Pipeline struct {
	Templates map[string]*wfv1.WorkflowTemplate
	hooks     map[string][]byte // file -> Helm template text
}

// Load reads the WorkflowTemplates of dir and the hooks of dir/hooks.
func Load(dir string) (*Pipeline, error) {
	p := &Pipeline{Templates: map[string]*wfv1.WorkflowTemplate{}, hooks: map[string][]byte{}}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var head struct{ Kind string }
		if err := yaml.Unmarshal(b, &head); err != nil || head.Kind != "WorkflowTemplate" {
			continue // kustomization, RBAC, ServiceAccount
		}
		var wt wfv1.WorkflowTemplate
		if err := yaml.UnmarshalStrict(b, &wt); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		p.Templates[wt.Name] = &wt
	}
	hooks, err := filepath.Glob(filepath.Join(dir, "hooks", "*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range hooks {
		if p.hooks[f], err = os.ReadFile(f); err != nil {
			return nil, err
		}
	}
	if len(p.Templates) == 0 || len(p.hooks) == 0 {
		return nil, fmt.Errorf("%s: no WorkflowTemplates or no hooks/", dir)
	}
	return p, nil
}

// Hook is one hook Workflow, rendered for an app.
type Hook struct {
	File     string
	Phase    string
	Wave     int
	Workflow *wfv1.Workflow
}

// Hooks renders every hook for app with the chart's values, as Helm does
// (Go templates with sprig's functions; a missing value is an error), in the
// order Argo CD runs them: by phase, then by sync wave.
func (p *Pipeline) Hooks(app string, values map[string]any) ([]Hook, error) {
	var hooks []Hook
	for file, text := range p.hooks {
		wf, err := helmhook.RenderText(file, text, app, values)
		if err != nil {
			return nil, err
		}
		h := Hook{File: file, Phase: wf.Annotations[HookAnnotation], Workflow: wf}
		if !slices.Contains(phaseOrder, h.Phase) {
			return nil, fmt.Errorf("%s: hook phase %q", file, h.Phase)
		}
		if w := wf.Annotations[WaveAnnotation]; w != "" {
			if h.Wave, err = strconv.Atoi(w); err != nil {
				return nil, fmt.Errorf("%s: sync wave %q", file, w)
			}
		}
		hooks = append(hooks, h)
	}
	slices.SortFunc(hooks, func(a, b Hook) int {
		if d := slices.Index(phaseOrder, a.Phase) - slices.Index(phaseOrder, b.Phase); d != 0 {
			return d
		}
		return a.Wave - b.Wave
	})
	return hooks, nil
}

// Submitted is a Workflow as `argo submit --from workflowtemplate/NAME -p
// k=v ...` makes it.
func Submitted(template string, params map[string]string) *wfv1.Workflow {
	wf := &wfv1.Workflow{}
	wf.GenerateName = template + "-"
	wf.Spec.WorkflowTemplateRef = &wfv1.WorkflowTemplateRef{Name: template}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		wf.Spec.Arguments.Parameters = append(wf.Spec.Arguments.Parameters, wfv1.Parameter{Name: k, Value: wfv1.AnyStringPtr(params[k])})
	}
	return wf
}
