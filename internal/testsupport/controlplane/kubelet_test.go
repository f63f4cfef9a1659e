package controlplane

import (
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The outputs reported are the executor's: a file's content less one
// trailing newline, else the default; a missing file without a default
// fails, as `argoexec wait` does.
func TestExecutorOutputs(t *testing.T) {
	param := func(name, path string, def *string) wfv1.Parameter {
		p := wfv1.Parameter{Name: name, GlobalName: "g-" + name, ValueFrom: &wfv1.ValueFrom{Path: path}}
		if def != nil {
			p.ValueFrom.Default = wfv1.AnyStringPtr(*def)
		}
		return p
	}
	empty := ""
	for _, tc := range []struct {
		name    string
		params  []wfv1.Parameter
		files   map[string]string
		want    map[string]string
		wantErr string
	}{
		{"file read, one newline trimmed", []wfv1.Parameter{param("a", "/o/a", nil)},
			map[string]string{"/o/a": "x\n\n"}, map[string]string{"a": "x\n"}, ""},
		{"default when no file", []wfv1.Parameter{param("a", "/o/a", &empty)},
			nil, map[string]string{"a": ""}, ""},
		{"no file, no default", []wfv1.Parameter{param("a", "/o/a", nil)},
			map[string]string{"/o/b": "x"}, nil, "output parameter a: the main container wrote no /o/a"},
		{"not the executor's to set", []wfv1.Parameter{{Name: "s", ValueFrom: &wfv1.ValueFrom{Supplied: &wfv1.SuppliedValueFrom{}}}},
			nil, map[string]string{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := &wfv1.Template{Outputs: wfv1.Outputs{Parameters: tc.params}}
			out, err := executorOutputs(tmpl, tc.files)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			got := map[string]string{}
			for i, p := range out.Parameters {
				if p.Value != nil {
					got[p.Name] = p.Value.String()
				}
				assert.Equal(t, tc.params[i].GlobalName, p.GlobalName, "the template's parameter, global name and all")
			}
			assert.Equal(t, tc.want, got)
			assert.Nil(t, tmpl.Outputs.Parameters[0].Value, "the template is left alone")
		})
	}
}

// The kubelet's last word: the main container's exit code decides the
// phase; the wait container ends with 0.
func TestKubeletTerminated(t *testing.T) {
	for _, tc := range []struct {
		exit  int32
		phase corev1.PodPhase
	}{{0, corev1.PodSucceeded}, {1, corev1.PodFailed}, {2, corev1.PodFailed}} {
		p := &corev1.Pod{Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init"}},
			Containers:     []corev1.Container{{Name: "wait"}, {Name: "main"}},
		}}
		started := metav1.Now()
		kubeletRunning(p, started)
		require.Equal(t, corev1.PodRunning, p.Status.Phase)
		kubeletTerminated(p, tc.exit, metav1.Now())
		assert.Equal(t, tc.phase, p.Status.Phase)
		codes := map[string]int32{}
		for _, s := range p.Status.ContainerStatuses {
			require.NotNil(t, s.State.Terminated, s.Name)
			codes[s.Name] = s.State.Terminated.ExitCode
			assert.Equal(t, started, s.State.Terminated.StartedAt, "started when it was reported running")
		}
		assert.Equal(t, map[string]int32{"main": tc.exit, "wait": 0}, codes)
	}
}
