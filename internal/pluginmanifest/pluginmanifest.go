// Package pluginmanifest builds an executor plugin's ConfigMap from its
// plugin.yaml with Argo's own code (the same as `argo executor-plugin
// build`), so that the checked-in ConfigMap can be regenerated and compared.
package pluginmanifest

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/argoproj/argo-workflows/v3/pkg/plugins/spec"
	plugins "github.com/argoproj/argo-workflows/v3/workflow/util/plugins"
	"sigs.k8s.io/yaml"
)

// Header starts the generated file, as Argo's CLI writes it.
const Header = "# This is an auto-generated file. DO NOT EDIT\n# Generated from plugin.yaml by `make plugin-configmap`.\n"

// ConfigMap reads dir/plugin.yaml (strictly: an unknown key is an error)
// and returns the ConfigMap's file name and content.
func ConfigMap(dir string) (name string, content []byte, err error) {
	manifest, err := os.ReadFile(filepath.Join(dir, "plugin.yaml"))
	if err != nil {
		return "", nil, err
	}
	p := &spec.Plugin{}
	if err := yaml.UnmarshalStrict(manifest, p); err != nil {
		return "", nil, fmt.Errorf("plugin.yaml: %w", err)
	}
	if p.Kind != "ExecutorPlugin" {
		return "", nil, fmt.Errorf("plugin.yaml: kind is %q, want ExecutorPlugin", p.Kind)
	}
	cm, err := plugins.ToConfigMap(p)
	if err != nil {
		return "", nil, fmt.Errorf("plugin.yaml: %w", err)
	}
	data, err := yaml.Marshal(cm)
	if err != nil {
		return "", nil, err
	}
	return cm.Name + "-configmap.yaml", append([]byte(Header), data...), nil
}
