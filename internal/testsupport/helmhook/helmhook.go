// Package helmhook renders the Argo CD hook Workflows of workflows/hooks as
// an app's Helm chart would (Go templates with sprig's functions, a missing
// value an error), and reads the chart values the README shows for them:
// the hooks test, the end-to-end tests and the demo all render them so.
package helmhook

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"sigs.k8s.io/yaml"
)

// ValuesMarker opens the README's block of hook values.
const ValuesMarker = "<!-- hook values: checked by workflows TestHooksRenderAsHelmWould -->\n```yaml\n"

// Render renders the hook in file for the Helm release (the Argo CD app)
// with values, and decodes it strictly as a Workflow.
func Render(file, release string, values map[string]any) (*wfv1.Workflow, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return RenderText(file, b, release, values)
}

// RenderText is Render of a hook already read; name names it in errors.
func RenderText(name string, text []byte, release string, values map[string]any) (*wfv1.Workflow, error) {
	tpl, err := template.New(filepath.Base(name)).Funcs(sprig.TxtFuncMap()).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var out bytes.Buffer
	if err := tpl.Execute(&out, map[string]any{"Release": map[string]any{"Name": release}, "Values": values}); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	var wf wfv1.Workflow
	if err := yaml.UnmarshalStrict(out.Bytes(), &wf); err != nil {
		return nil, fmt.Errorf("%s as rendered: %w", name, err)
	}
	return &wf, nil
}

// READMEValues are the chart values the README at path shows for the hooks.
func READMEValues(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	_, block, ok := strings.Cut(string(b), ValuesMarker)
	if !ok {
		return nil, fmt.Errorf("%s: the hook values marker is missing", path)
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		return nil, fmt.Errorf("%s: the hook values block is not closed", path)
	}
	var values map[string]any
	if err := yaml.Unmarshal([]byte(block), &values); err != nil {
		return nil, fmt.Errorf("%s: hook values: %w", path, err)
	}
	return values, nil
}
