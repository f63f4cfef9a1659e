package workflows

import (
	"fmt"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/validate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/testsupport/helmhook"
)

// hookTemplates is which WorkflowTemplate each Argo CD hook phase runs.
var hookTemplates = map[string]string{
	"PreSync":  "precompile-assets",
	"Sync":     "migrate",
	"PostSync": "post-sync",
	"SyncFail": "sync-fail",
}

const maxGenerateName = 36

// hookProblems checks the hook Workflows: one per phase, each on its
// template, a short generateName (no fixed name: every sync makes a new
// one), a delete policy, and only parameters the template declares.
func hookProblems(m *manifests) []string {
	var problems []string
	phases := map[string]string{}
	for _, file := range m.hookFiles() {
		wf := m.hooks[file]
		phase := wf.Annotations["argocd.argoproj.io/hook"]
		want, ok := hookTemplates[phase]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: hook %q is not one of PreSync, Sync, PostSync, SyncFail", file, phase))
			continue
		case phases[phase] != "":
			problems = append(problems, fmt.Sprintf("%s: a second %s hook (%s)", file, phase, phases[phase]))
		case wf.Spec.WorkflowTemplateRef == nil || wf.Spec.WorkflowTemplateRef.Name != want:
			problems = append(problems, fmt.Sprintf("%s: a %s hook that does not run WorkflowTemplate %s", file, phase, want))
		}
		phases[phase] = file
		switch g := wf.GenerateName; {
		case wf.Name != "":
			problems = append(problems, fmt.Sprintf("%s: a fixed name %q (each sync makes a new Workflow: generateName)", file, wf.Name))
		case g == "" || !strings.HasSuffix(g, "-") || len(g) > maxGenerateName:
			problems = append(problems, fmt.Sprintf("%s: generateName %q: want one ending in - of at most %d characters", file, g, maxGenerateName))
		}
		switch p := wf.Annotations["argocd.argoproj.io/hook-delete-policy"]; p {
		case "HookSucceeded", "HookFailed", "BeforeHookCreation":
		default:
			problems = append(problems, fmt.Sprintf("%s: hook-delete-policy %q", file, p))
		}
		if wt := m.templates[want]; wt != nil {
			for _, p := range wf.Spec.Arguments.Parameters {
				if wt.Spec.Arguments.GetParameterByName(p.Name) == nil {
					problems = append(problems, fmt.Sprintf("%s: passes parameter %s, which %s does not take", file, p.Name, want))
				}
			}
		}
	}
	for phase := range hookTemplates {
		if phases[phase] == "" {
			problems = append(problems, "no "+phase+" hook")
		}
	}
	return problems
}

func TestHooks(t *testing.T) {
	assert.Empty(t, hookProblems(load(t)))
}

func TestHookCheckRefusesBrokenCopies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(m *manifests)
		want   string
	}{
		{"a long generateName", func(m *manifests) {
			m.hooks["hooks/post-sync.yaml"].GenerateName = "slipway-post-sync-of-the-frontend-app-"
		}, `hooks/post-sync.yaml: generateName "slipway-post-sync-of-the-frontend-app-": want one ending in - of at most 36`},
		{"a fixed name", func(m *manifests) {
			m.hooks["hooks/sync.yaml"].Name = "migrate"
		}, `hooks/sync.yaml: a fixed name "migrate"`},
		{"no delete policy", func(m *manifests) {
			delete(m.hooks["hooks/sync-fail.yaml"].Annotations, "argocd.argoproj.io/hook-delete-policy")
		}, `hooks/sync-fail.yaml: hook-delete-policy ""`},
		{"a parameter the template does not take", func(m *manifests) {
			p := &m.hooks["hooks/pre-sync.yaml"].Spec.Arguments.Parameters
			*p = append(*p, wfv1.Parameter{Name: "assets-destination", Value: wfv1.AnyStringPtr("s3://x")})
		}, "hooks/pre-sync.yaml: passes parameter assets-destination, which precompile-assets does not take"},
		{"a hook on the wrong template", func(m *manifests) {
			m.hooks["hooks/post-sync.yaml"].Spec.WorkflowTemplateRef.Name = "sync-fail"
		}, "hooks/post-sync.yaml: a PostSync hook that does not run WorkflowTemplate post-sync"},
		{"a phase without a hook", func(m *manifests) {
			m.hooks["hooks/sync-fail.yaml"].Annotations["argocd.argoproj.io/hook"] = "PostSync"
		}, "no SyncFail hook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t).deepCopy()
			tc.mutate(m)
			assert.Contains(t, strings.Join(hookProblems(m), "\n"), tc.want)
		})
	}
}

// readmeValues are the chart values the README shows for the hooks.
func readmeValues(t *testing.T) map[string]any {
	t.Helper()
	values, err := helmhook.READMEValues("../README.md")
	require.NoError(t, err)
	return values
}

// renderHook renders a hook as Helm does, for the Argo CD app frontend.
func renderHook(file string, values map[string]any) (*wfv1.Workflow, error) {
	return helmhook.Render(file, "frontend", values)
}

// The hooks are ready to drop into a chart: rendered with the README's
// values they are Workflows Argo accepts, every value filled in.
func TestHooksRenderAsHelmWould(t *testing.T) {
	m := load(t)
	values := readmeValues(t)
	for _, file := range m.hookFiles() {
		t.Run(file, func(t *testing.T) {
			wf, err := renderHook(file, values)
			require.NoError(t, err)
			require.NoError(t, validate.ValidateWorkflow(m, noClusterTemplates{}, wf, nil, validate.ValidateOpts{}))
			got := map[string]string{}
			for _, p := range wf.Spec.Arguments.Parameters {
				got[p.Name] = p.Value.String()
				assert.NotContains(t, p.Value.String(), "{{", p.Name)
			}
			assert.Equal(t, "frontend", got["app"])
			if _, ok := got["image-tag"]; ok {
				assert.Equal(t, "v42", got["image-tag"])
			}
			if _, ok := got["argocd-url"]; ok {
				assert.Equal(t, "https://argo.integration.example/applications/frontend", got["argocd-url"])
			}
		})
	}
	// A value the README does not show is an error, as in a chart without it.
	delete(values["slipway"].(map[string]any), "migrate")
	_, err := renderHook("hooks/sync.yaml", values)
	assert.ErrorContains(t, err, "migrate")
}
