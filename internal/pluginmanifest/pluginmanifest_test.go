package pluginmanifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	plugins "github.com/argoproj/argo-workflows/v3/workflow/util/plugins"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiv1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

const dir = "../../plugin"

func TestCheckedInConfigMapIsUpToDate(t *testing.T) {
	name, want, err := ConfigMap(dir)
	require.NoError(t, err)
	assert.Equal(t, "promoter-executor-plugin-configmap.yaml", name)
	got, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err, "run make plugin-configmap")
	assert.Equal(t, string(want), string(got), "plugin/%s is stale: run make plugin-configmap", name)
}

func TestConfigMapAsArgoReadsIt(t *testing.T) {
	_, content, err := ConfigMap(dir)
	require.NoError(t, err)
	var cm apiv1.ConfigMap
	require.NoError(t, yaml.UnmarshalStrict(content, &cm))
	assert.Equal(t, "ExecutorPlugin", cm.Labels["workflows.argoproj.io/configmap-type"])
	p, err := plugins.FromConfigMap(&cm) // what the controller does
	require.NoError(t, err)
	c := p.Spec.Sidecar.Container
	require.NotNil(t, c.SecurityContext.RunAsUser)
	assert.NotEqual(t, int64(65534), *c.SecurityContext.RunAsUser, "65534 cannot read the agent's token file")
	assert.Equal(t, int64(8737), *c.SecurityContext.RunAsUser)
	assert.Equal(t, int32(4355), c.Ports[0].ContainerPort)
	assert.False(t, c.Resources.Requests.Memory().IsZero())
	assert.False(t, c.Resources.Limits.Memory().IsZero())
	assert.Empty(t, c.VolumeMounts, "a plugin sidecar gets no volumes besides the agent's")
}

func TestRefusesWhatArgoWouldRefuse(t *testing.T) {
	base, err := os.ReadFile(filepath.Join(dir, "plugin.yaml"))
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		mutate func(string) string
		want   string
	}{
		{"wrong kind", func(s string) string { return strings.Replace(s, "kind: ExecutorPlugin", "kind: ConfigMap", 1) },
			`kind is "ConfigMap", want ExecutorPlugin`},
		{"unknown key", func(s string) string {
			return strings.Replace(s, "  sidecar:\n", "  sidecar:\n    sidekick: true\n", 1)
		}, `unknown field "sidekick"`},
		{"no security ctx", func(s string) string { return s[:strings.Index(s, "      # The agent's token file")] },
			"security context is mandatory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			mutated := tc.mutate(string(base))
			require.NotEqual(t, string(base), mutated, "the mutation applies")
			require.NoError(t, os.WriteFile(filepath.Join(d, "plugin.yaml"), []byte(mutated), 0o644))
			_, _, err := ConfigMap(d)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want, "refused for the reason the mutation introduced")
			assert.True(t, strings.HasPrefix(err.Error(), "plugin.yaml: "), "the error names the file: %v", err)
		})
	}
}

func TestRBACGrantsWhatTheAgentUses(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(dir, "rbac.yaml"))
	require.NoError(t, err)
	docs := strings.Split(string(raw), "\n---\n")
	require.Len(t, docs, 2)
	var role rbacv1.Role
	require.NoError(t, yaml.UnmarshalStrict([]byte(docs[0]), &role))
	var binding rbacv1.RoleBinding
	require.NoError(t, yaml.UnmarshalStrict([]byte(docs[1]), &binding))
	grants := map[string][]string{}
	for _, r := range role.Rules {
		assert.Equal(t, []string{"argoproj.io"}, r.APIGroups)
		for _, res := range r.Resources {
			grants[res] = append(grants[res], r.Verbs...)
		}
	}
	assert.Equal(t, map[string][]string{"workflowtasksets": {"list", "watch"}, "workflowtasksets/status": {"patch"}}, grants)
	assert.Equal(t, role.Name, binding.RoleRef.Name)
	assert.Equal(t, "Role", binding.RoleRef.Kind)
	require.Len(t, binding.Subjects, 1)
	assert.Equal(t, "slipway", binding.Subjects[0].Name, "the service account of Slipway's WorkflowTemplates")
}
