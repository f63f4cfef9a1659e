// Package workflows holds Slipway's WorkflowTemplates, the example Argo CD
// hook Workflows (hooks/) and the kustomization that installs them with the
// promoter plugin. Its tests check every manifest the way the cluster and
// the binaries will read it: Argo's own validation, the binaries' own
// flags and outputs (--describe), the kustomization as kustomize renders
// it, and the policy every step follows.
package workflows

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/plugins/spec"
	"github.com/stretchr/testify/require"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// The folders whose manifests the tests read, from this package's folder.
const (
	workflowsDir = "."
	pluginDir    = "../plugin"
	hooksDir     = "hooks"
	readmePath   = "../README.md"
)

// manifests are the WorkflowTemplates, CronWorkflows, hook Workflows and
// executor plugin of the repository, parsed. Tests deep-copy them to break
// one on purpose.
type manifests struct {
	templates map[string]*wfv1.WorkflowTemplate // by name
	files     map[string]string                 // template name -> file
	crons     map[string]*wfv1.CronWorkflow     // by name
	hooks     map[string]*wfv1.Workflow         // file -> hook Workflow
	plugin    *spec.Plugin
}

func (m *manifests) deepCopy() *manifests {
	c := &manifests{templates: map[string]*wfv1.WorkflowTemplate{}, files: m.files, crons: map[string]*wfv1.CronWorkflow{},
		hooks: map[string]*wfv1.Workflow{}}
	for n, wt := range m.templates {
		c.templates[n] = wt.DeepCopy()
	}
	for n, cw := range m.crons {
		c.crons[n] = cw.DeepCopy()
	}
	for f, wf := range m.hooks {
		c.hooks[f] = wf.DeepCopy()
	}
	p := *m.plugin
	p.Spec.Sidecar.Container = *m.plugin.Spec.Sidecar.Container.DeepCopy()
	c.plugin = &p
	return c
}

// templateNames are the WorkflowTemplates' names, sorted.
func (m *manifests) templateNames() []string { return slices.Sorted(maps.Keys(m.templates)) }

// cronNames are the CronWorkflows' names, sorted.
func (m *manifests) cronNames() []string { return slices.Sorted(maps.Keys(m.crons)) }

// hookFiles are the hook files, sorted.
func (m *manifests) hookFiles() []string { return slices.Sorted(maps.Keys(m.hooks)) }

// Get resolves templateRefs to the WorkflowTemplates here (Argo's
// WorkflowTemplateNamespacedGetter).
func (m *manifests) Get(name string) (*wfv1.WorkflowTemplate, error) {
	if wt, ok := m.templates[name]; ok {
		return wt, nil
	}
	return nil, fmt.Errorf("no WorkflowTemplate %q in workflows/", name)
}

type noClusterTemplates struct{}

func (noClusterTemplates) Get(name string) (*wfv1.ClusterWorkflowTemplate, error) {
	return nil, fmt.Errorf("no ClusterWorkflowTemplate %q", name)
}

// yamlDoc is one document of a manifest file.
type yamlDoc struct {
	file string
	kind string
	raw  []byte
}

// readDocs reads every YAML document of every .yaml file under dirs.
func readDocs(t *testing.T, dirs ...string) []yamlDoc {
	t.Helper()
	var docs []yamlDoc
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(path) != ".yaml" {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
			for {
				raw, err := r.Read()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				if len(bytes.TrimSpace(raw)) == 0 {
					continue
				}
				var meta struct{ Kind string }
				if err := yaml.Unmarshal(raw, &meta); err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				docs = append(docs, yamlDoc{file: path, kind: meta.Kind, raw: raw})
			}
		})
		require.NoError(t, err)
	}
	require.NotEmpty(t, docs)
	return docs
}

// load parses the WorkflowTemplates, CronWorkflows, hooks and plugin,
// refusing unknown fields (a typo would otherwise be dropped in silence, as
// by the cluster).
func load(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{templates: map[string]*wfv1.WorkflowTemplate{}, files: map[string]string{}, crons: map[string]*wfv1.CronWorkflow{},
		hooks: map[string]*wfv1.Workflow{}}
	for _, d := range readDocs(t, workflowsDir, pluginDir) {
		switch d.kind {
		case "WorkflowTemplate":
			var wt wfv1.WorkflowTemplate
			require.NoError(t, yaml.UnmarshalStrict(d.raw, &wt), d.file)
			require.NotContains(t, m.templates, wt.Name, "two WorkflowTemplates named %s", wt.Name)
			require.Equal(t, filepath.Base(d.file), wt.Name+".yaml", "one WorkflowTemplate a file, named after it")
			m.templates[wt.Name], m.files[wt.Name] = &wt, d.file
		case "CronWorkflow":
			var cw wfv1.CronWorkflow
			require.NoError(t, yaml.UnmarshalStrict(d.raw, &cw), d.file)
			require.NotContains(t, m.crons, cw.Name, "two CronWorkflows named %s", cw.Name)
			require.Equal(t, filepath.Base(d.file), cw.Name+".yaml", "a CronWorkflow lives in the file of the WorkflowTemplate it runs, under its name")
			m.crons[cw.Name] = &cw
		case "Workflow":
			require.Equal(t, hooksDir, filepath.Dir(d.file), "%s: a Workflow outside hooks/", d.file)
			var wf wfv1.Workflow
			require.NoError(t, yaml.UnmarshalStrict(d.raw, &wf), d.file)
			m.hooks[d.file] = &wf
		case "ExecutorPlugin":
			var p spec.Plugin
			require.NoError(t, yaml.UnmarshalStrict(d.raw, &p), d.file)
			m.plugin = &p
		}
	}
	require.NotNil(t, m.plugin, "plugin/plugin.yaml")
	return m
}

// isParameterRef reports whether s is exactly one {{...parameters...}}
// reference: a value a template takes from a parameter.
func isParameterRef(s string) bool {
	inner, ok := strings.CutPrefix(s, "{{")
	if !ok || !strings.HasSuffix(inner, "}}") || strings.Count(s, "{{") != 1 {
		return false
	}
	return strings.Contains(inner, ".parameters.")
}
