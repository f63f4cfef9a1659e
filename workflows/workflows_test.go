// Package workflows holds Slipway's WorkflowTemplates and example Argo CD
// hook Workflows; its test validates every manifest with Argo's own
// validation, so a template that Argo would refuse never ships.
package workflows

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/plugins/executor"
	"github.com/argoproj/argo-workflows/v3/workflow/validate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/slipway-deploy/slipway/internal/promoterserver"
)

// templates resolves templateRefs to the WorkflowTemplates in this folder.
type templates map[string]*wfv1.WorkflowTemplate

func (t templates) Get(name string) (*wfv1.WorkflowTemplate, error) {
	if wt, ok := t[name]; ok {
		return wt, nil
	}
	return nil, fmt.Errorf("no WorkflowTemplate %q in workflows/", name)
}

type noClusterTemplates struct{}

func (noClusterTemplates) Get(name string) (*wfv1.ClusterWorkflowTemplate, error) {
	return nil, fmt.Errorf("no ClusterWorkflowTemplate %q", name)
}

func TestManifestsPassArgoValidation(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	wfts := templates{}
	var wfs []*wfv1.Workflow
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var meta struct{ Kind string }
		require.NoError(t, yaml.Unmarshal(b, &meta), f)
		switch meta.Kind {
		case "WorkflowTemplate":
			var wt wfv1.WorkflowTemplate
			require.NoError(t, yaml.UnmarshalStrict(b, &wt), f)
			wfts[wt.Name] = &wt
		case "Workflow":
			var wf wfv1.Workflow
			require.NoError(t, yaml.UnmarshalStrict(b, &wf), f)
			wfs = append(wfs, &wf)
		default:
			t.Errorf("%s: unexpected kind %q", f, meta.Kind)
		}
	}
	for name, wt := range wfts {
		err := validate.ValidateWorkflowTemplate(wfts, noClusterTemplates{}, wt, nil, validate.ValidateOpts{})
		assert.NoError(t, err, name)
	}
	for _, wf := range wfs {
		err := validate.ValidateWorkflow(wfts, noClusterTemplates{}, wf, nil, validate.ValidateOpts{})
		assert.NoError(t, err, wf.Name)
	}
}

// The validation really runs: a broken template is refused.
func TestValidationRefusesABrokenTemplate(t *testing.T) {
	b, err := os.ReadFile("bump-tag.yaml")
	require.NoError(t, err)
	var wt wfv1.WorkflowTemplate
	require.NoError(t, yaml.UnmarshalStrict(b, &wt))
	wt.Spec.Templates[0].Container.Args = append(wt.Spec.Templates[0].Container.Args, "--x={{inputs.parameters.nope}}")
	err = validate.ValidateWorkflowTemplate(templates{}, noClusterTemplates{}, &wt, nil, validate.ValidateOpts{})
	assert.ErrorContains(t, err, "inputs.parameters.nope")
}

func TestBumpTagRetriesOnExitOneOnly(t *testing.T) {
	b, err := os.ReadFile("bump-tag.yaml")
	require.NoError(t, err)
	var wt wfv1.WorkflowTemplate
	require.NoError(t, yaml.UnmarshalStrict(b, &wt))
	rs := wt.Spec.Templates[0].RetryStrategy
	require.NotNil(t, rs)
	assert.Equal(t, "asInt(lastRetry.exitCode) == 1", rs.Expression)
}

// The promote template's plugin step decodes as the promoter expects, and
// its outputs are the four the plugin supplies.
func TestPromoteTemplateMatchesThePlugin(t *testing.T) {
	b, err := os.ReadFile("promote.yaml")
	require.NoError(t, err)
	var wt wfv1.WorkflowTemplate
	require.NoError(t, yaml.UnmarshalStrict(b, &wt))
	tmpl := wt.Spec.Templates[0]
	require.NotNil(t, tmpl.Plugin)
	_, args, ours, err := promoterserver.Decode(mustJSON(t, executor.ExecuteTemplateArgs{Template: &tmpl}))
	require.NoError(t, err)
	require.True(t, ours)
	assert.Equal(t, promoterserver.Args{App: "{{inputs.parameters.app}}", From: "{{inputs.parameters.environment}}",
		Tag: "{{inputs.parameters.image-tag}}"}, args)
	var names []string
	for _, p := range tmpl.Outputs.Parameters {
		require.NotNil(t, p.ValueFrom.Supplied, p.Name)
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"promoted", "target-env", "commit", "reason"}, names)
}

// A container with a read-only root file system can write its outputs only
// into a writable volume: every --outputs-dir and every output parameter
// path lies under an emptyDir mount (bump-tag once pushed its commit and
// then failed to write /tmp/outputs, on every retry).
func TestOutputsAreWrittenToAWritableVolume(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var wt wfv1.WorkflowTemplate
		if yaml.Unmarshal(b, &wt) != nil || wt.Kind != "WorkflowTemplate" {
			continue
		}
		emptyDirs := map[string]bool{}
		for _, v := range wt.Spec.Volumes {
			emptyDirs[v.Name] = v.EmptyDir != nil
		}
		for _, tmpl := range wt.Spec.Templates {
			c := tmpl.Container
			if c == nil || c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
				continue
			}
			for _, v := range tmpl.Volumes {
				emptyDirs[v.Name] = v.EmptyDir != nil
			}
			writable := func(path string) bool {
				for _, m := range c.VolumeMounts {
					if emptyDirs[m.Name] && !m.ReadOnly && (path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")) {
						return true
					}
				}
				return false
			}
			var paths []string
			for _, a := range c.Args {
				if dir, ok := strings.CutPrefix(a, "--outputs-dir="); ok {
					paths = append(paths, dir)
				}
			}
			if tmpl.Outputs.Parameters != nil {
				for _, p := range tmpl.Outputs.Parameters {
					if p.ValueFrom != nil && p.ValueFrom.Path != "" {
						paths = append(paths, p.ValueFrom.Path)
					}
				}
			}
			for _, p := range paths {
				assert.True(t, writable(p), "%s: template %s writes %s on a read-only root file system", f, tmpl.Name, p)
				checked++
			}
		}
	}
	assert.Positive(t, checked, "bump-tag's outputs are among the paths checked")
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
