package localargo

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiv1 "k8s.io/api/core/v1"
)

// values are chart values for every key the hooks read.
func values() map[string]any {
	return map[string]any{
		"image": map[string]any{"repository": "registry.example/frontend", "tag": "v42"},
		"slipway": map[string]any{
			"environment": "integration", "argocdURL": "", "argoWorkflowsURL": "", "approvalEnvironments": "",
			"assets":  map[string]any{"destination": "file:///tmp/assets", "command": ""},
			"migrate": map[string]any{"command": "sh db/migrate"},
			"smoke":   map[string]any{"baseURL": "http://127.0.0.1:8080/frontend"},
		},
	}
}

// The hooks of workflows/hooks, rendered, come in the order Argo CD runs
// them, each naming the template it runs, with the chart's values.
func TestHooksComeInArgoCDsOrder(t *testing.T) {
	p, err := Load("../../../workflows")
	require.NoError(t, err)
	hooks, err := p.Hooks("frontend", values())
	require.NoError(t, err)
	type hook struct {
		phase    string
		wave     int
		template string
	}
	var got []hook
	for _, h := range hooks {
		got = append(got, hook{h.Phase, h.Wave, h.Workflow.Spec.WorkflowTemplateRef.Name})
		assert.Contains(t, p.Templates, h.Workflow.Spec.WorkflowTemplateRef.Name)
		app := h.Workflow.Spec.Arguments.GetParameterByName("app")
		require.NotNil(t, app, h.File)
		assert.Equal(t, "frontend", app.Value.String(), h.File)
	}
	assert.Equal(t, []hook{{PreSync, 0, "precompile-assets"}, {Sync, -1, "migrate"}, {PostSync, 0, "post-sync"}, {SyncFail, 0, "sync-fail"}}, got)

	v := values()
	delete(v["slipway"].(map[string]any), "migrate")
	_, err = p.Hooks("frontend", v)
	assert.ErrorContains(t, err, "migrate", "a value the chart lacks is an error, as in Helm")
}

// A container's paths are its mounts' and its image's folders, the
// longest mapped prefix first; a --flag=PATH argument is translated too.
func TestPathsInAContainer(t *testing.T) {
	m := &pathMap{to: map[string]string{
		"/slipway/outputs":   "/pod/volumes/outputs",
		"/etc/slipway":       "/pod/volumes/etc",
		"/etc/slipway/smoke": "/pod/volumes/smoke-spec",
		"/usr/local/bin":     "/repo/bin",
	}}
	for _, tc := range []struct{ in, want string }{
		{"/slipway/outputs", "/pod/volumes/outputs"},
		{"--outputs-dir=/slipway/outputs", "--outputs-dir=/pod/volumes/outputs"},
		{"/etc/slipway/smoke/smoke.yaml", "/pod/volumes/smoke-spec/smoke.yaml"},
		{"/etc/slipway/slack/url", "/pod/volumes/etc/slack/url"},
		{"/usr/local/bin/bump-tag", "/repo/bin/bump-tag"},
		{"/slipway/outputs-old", "/slipway/outputs-old"},
		{"--app=frontend", "--app=frontend"},
		{"sh db/migrate", "sh db/migrate"},
		{"x=/slipway/outputs", "x=/slipway/outputs"},
	} {
		assert.Equal(t, tc.want, m.arg(tc.in), tc.in)
	}
}

// A pod's volumes: an emptyDir is an empty folder, a Secret or ConfigMap
// a folder of its items; a Secret that is not there stops the pod unless
// it is optional.
func TestVolumes(t *testing.T) {
	yes := true
	w := &walk{c: &Cluster{
		Secrets:    map[string]map[string]string{"slipway-slack-webhook": {"url": "https://hooks.example/T/B/x"}},
		ConfigMaps: map[string]map[string]string{"frontend-smoke-test": {"smoke.yaml": "checks: []\n"}},
	}}
	for _, tc := range []struct {
		name    string
		vol     apiv1.Volume
		files   map[string]string
		wantErr string
	}{
		{name: "emptyDir", vol: apiv1.Volume{Name: "tmp", VolumeSource: apiv1.VolumeSource{EmptyDir: &apiv1.EmptyDirVolumeSource{}}},
			files: map[string]string{}},
		{name: "secret item", vol: apiv1.Volume{Name: "slack", VolumeSource: apiv1.VolumeSource{Secret: &apiv1.SecretVolumeSource{
			SecretName: "slipway-slack-webhook", Items: []apiv1.KeyToPath{{Key: "url", Path: "url"}}}}},
			files: map[string]string{"url": "https://hooks.example/T/B/x"}},
		{name: "missing secret", vol: apiv1.Volume{Name: "db", VolumeSource: apiv1.VolumeSource{Secret: &apiv1.SecretVolumeSource{
			SecretName: "frontend-database"}}}, wantErr: "no Secret frontend-database"},
		{name: "missing optional secret", vol: apiv1.Volume{Name: "s3", VolumeSource: apiv1.VolumeSource{Secret: &apiv1.SecretVolumeSource{
			SecretName: "slipway-assets-s3", Optional: &yes}}}, files: map[string]string{}},
		{name: "configMap", vol: apiv1.Volume{Name: "spec", VolumeSource: apiv1.VolumeSource{ConfigMap: &apiv1.ConfigMapVolumeSource{
			LocalObjectReference: apiv1.LocalObjectReference{Name: "frontend-smoke-test"}, Optional: &yes}}},
			files: map[string]string{"smoke.yaml": "checks: []\n"}},
		{name: "a key the secret lacks", vol: apiv1.Volume{Name: "slack", VolumeSource: apiv1.VolumeSource{Secret: &apiv1.SecretVolumeSource{
			SecretName: "slipway-slack-webhook", Items: []apiv1.KeyToPath{{Key: "token", Path: "token"}}}}},
			wantErr: "has no key token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := t.TempDir()
			dirs, err := w.volumes(pod, []apiv1.Volume{tc.vol})
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			got := map[string]string{}
			entries, err := os.ReadDir(dirs[tc.vol.Name])
			require.NoError(t, err)
			for _, e := range entries {
				b, err := os.ReadFile(filepath.Join(dirs[tc.vol.Name], e.Name()))
				require.NoError(t, err)
				got[e.Name()] = string(b)
			}
			assert.Equal(t, tc.files, got)
		})
	}
}
