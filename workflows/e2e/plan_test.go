package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/retry"

	"github.com/slipway-deploy/slipway/internal/testsupport/controlplane"
)

// The objects the README has the user create, or the kustomization
// installs, that the plan step reads: the git token and the plugin's own
// configuration (plugin/kustomization.yaml makes it from
// promoter.example.yaml).
const (
	chartsRepoSecret = "slipway-charts-repo"
	promoterConfig   = "slipway-promoter"
)

// planReport is a plan with drift as `promoter plan --output markdown`
// writes it, whose hold reason (anyone's text, from the charts repo)
// holds Argo's own markup.
const planReport = "*Release plan*: `main` at `5c2e91a`, 2026-11-25 12:00 UTC, 13 apps\n\n" +
	"*Holds*\n- production (held-app): INC-1234 {{workflow.name}} {{=sprig.upper('x')}} by jane since 2026-11-25 10:00 UTC\n\n" +
	"*Drift* (behind the environment before for more than 7d)\n" +
	"- `manual-app` production runs v20, 3 releases behind staging (v50) for 11d\n\n" +
	"18 other steps have nothing to do.\n"

// planArgs are what a user's overlay passes the CronWorkflow (README,
// "The plan in the channel, every day").
var planArgs = wfv1.Arguments{Parameters: []wfv1.Parameter{
	{Name: "slack-channel", Value: wfv1.AnyStringPtr("#releases")},
	{Name: "argo-workflows-url", Value: wfv1.AnyStringPtr("https://argo-workflows.example")},
}}

// testPlanFromCron: the CronWorkflow installed from workflows/, set to run
// every minute, makes its Workflow (Argo's cron controller, resolving the
// WorkflowTemplate); the plan step exits 1 with its report (drift), is not
// retried, and the exit handler's notify pod gets the report exactly as
// written, past the controller's substitution of the pod's spec; the
// workflow ends Failed.
func (e *env) testPlanFromCron(t *testing.T) {
	name := e.cronPlan(t)
	pod := e.podOf(t, name, "plan", 0)
	outFile := e.assertPlanPod(t, pod)
	e.argo.PlayPod(t, pod, controlplane.PodRun{ExitCode: 1, Files: map[string]string{outFile: planReport}})

	notify := e.podOf(t, name, "report", 0)
	flags, report := e.assertReportPod(t, name, notify)
	assert.Equal(t, strings.TrimSuffix(planReport, "\n"), report, "the plan as written: {{...}} not substituted")
	assert.Equal(t, ":warning: Release plan: drift", flags["title"])
	assert.Equal(t, "", flags["reason"])
	e.argo.PlayPod(t, notify, controlplane.PodRun{ExitCode: 0})

	wf := e.argo.WaitWorkflow(t, name, time.Minute, completed)
	assert.Equal(t, wfv1.WorkflowFailed, wf.Status.Phase, "drift fails the workflow (--fail-on-drift)")
	attempts := nodes(wf, "plan", wfv1.NodeTypePod)
	require.Len(t, attempts, 1, "exit code 1 is drift: not retried")
	require.NotNil(t, attempts[0].Outputs.ExitCode)
	assert.Equal(t, "1", *attempts[0].Outputs.ExitCode)
	assert.Equal(t, wfv1.NodeSucceeded, onlyNode(t, wf, "report", wfv1.NodeTypePod).Phase)
}

// testPlanNotRun: a plan that could not read the charts repo (exit 1, no
// report) is not retried either, and the exit handler says so, with the
// step's message, an empty report posted all the same.
func (e *env) testPlanNotRun(t *testing.T) {
	name := e.submitPlan(t)
	pod := e.podOf(t, name, "plan", 0)
	e.assertPlanPod(t, pod)
	e.argo.PlayPod(t, pod, controlplane.PodRun{ExitCode: 1})

	notify := e.podOf(t, name, "report", 0)
	flags, report := e.assertReportPod(t, name, notify)
	assert.Empty(t, report)
	assert.Equal(t, ":x: The release plan did not run to its end (Failed)", flags["title"])
	assert.Equal(t, "true", flags["post-empty"])
	assert.Equal(t, "promoter plan: main: Error (exit code 1) (exit code 1: the charts repo could not be read; 2: invalid configuration or flags). Its log is in the workflow.",
		flags["reason"])
	e.argo.PlayPod(t, notify, controlplane.PodRun{ExitCode: 0})
	wf := e.argo.WaitWorkflow(t, name, time.Minute, completed)
	assert.Equal(t, wfv1.WorkflowFailed, wf.Status.Phase)
	assert.Len(t, nodes(wf, "plan", wfv1.NodeTypePod), 1, "not retried")
}

// testPlanNoDrift: a plan without drift posts nothing: the exit handler's
// notify step is skipped, and the workflow ends Succeeded.
func (e *env) testPlanNoDrift(t *testing.T) {
	name := e.submitPlan(t)
	pod := e.podOf(t, name, "plan", 0)
	outFile := e.assertPlanPod(t, pod)
	e.argo.PlayPod(t, pod, controlplane.PodRun{ExitCode: 0, Files: map[string]string{outFile: "*Release plan*: nothing to say\n"}})
	wf := e.argo.WaitWorkflow(t, name, time.Minute, completed)
	assert.Equal(t, wfv1.WorkflowSucceeded, wf.Status.Phase, wf.Status.Message)
	assert.Empty(t, nodes(wf, "report", wfv1.NodeTypePod), "no notify pod")
	assert.Equal(t, wfv1.NodeSkipped, onlyNode(t, wf, "notify", wfv1.NodeTypeSkipped).Phase)
}

// cronPlan sets the CronWorkflow promoter-plan to run every minute with
// planArgs, waits for the Workflow Argo's cron controller makes, suspends
// the CronWorkflow again, and returns the Workflow's name.
func (e *env) cronPlan(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	crons := e.argo.Argo.ArgoprojV1alpha1().CronWorkflows(e.argo.Namespace)
	update := func(edit func(*wfv1.CronWorkflow)) {
		require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cw, err := crons.Get(ctx, "promoter-plan", metav1.GetOptions{})
			if err != nil {
				return err
			}
			edit(cw)
			_, err = crons.Update(ctx, cw, metav1.UpdateOptions{})
			return err
		}))
	}
	update(func(cw *wfv1.CronWorkflow) {
		require.NotNil(t, cw.Spec.WorkflowSpec.WorkflowTemplateRef, "installed from workflows/promoter-plan.yaml")
		cw.Spec.Schedules, cw.Spec.WorkflowSpec.Arguments = []string{"* * * * *"}, planArgs
	})
	sel := labels.SelectorFromSet(labels.Set{common.LabelKeyCronWorkflow: "promoter-plan"}).String()
	var name string
	deadline := time.Now().Add(3 * time.Minute) // the next minute, and the controller's resync
	for name == "" {
		require.True(t, time.Now().Before(deadline), "the CronWorkflow made no Workflow")
		list, err := e.argo.Argo.ArgoprojV1alpha1().Workflows(e.argo.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		require.NoError(t, err)
		if len(list.Items) > 0 {
			name = list.Items[0].Name
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	update(func(cw *wfv1.CronWorkflow) { cw.Spec.Suspend = true })
	return name
}

// submitPlan creates the Workflow the CronWorkflow would (Argo's own
// conversion), with planArgs.
func (e *env) submitPlan(t *testing.T) string {
	t.Helper()
	cw, err := e.argo.Argo.ArgoprojV1alpha1().CronWorkflows(e.argo.Namespace).Get(context.Background(), "promoter-plan", metav1.GetOptions{})
	require.NoError(t, err)
	cw.Spec.WorkflowSpec.Arguments = planArgs
	wf := common.ConvertCronWorkflowToWorkflow(cw)
	created, err := e.argo.Argo.ArgoprojV1alpha1().Workflows(e.argo.Namespace).Create(context.Background(), wf, metav1.CreateOptions{})
	require.NoError(t, err)
	return created.Name
}

// podOf waits for the i-th pod node of template tmpl of workflow name.
func (e *env) podOf(t *testing.T, name, tmpl string, i int) *corev1.Pod {
	t.Helper()
	r := &hookRun{e: e, name: name}
	return r.podOf(t, tmpl, i)
}

// assertPlanPod checks the plan pod as the controller made it: `promoter
// plan` with the flags of the template, the plugin's configuration from
// its ConfigMap, the git token from the Secret's key, the plan written to
// a writable emptyDir; it returns --output-file.
func (e *env) assertPlanPod(t *testing.T, pod *corev1.Pod) string {
	t.Helper()
	main := findContainer(t, pod.Spec.Containers, common.MainContainerName)
	cmd := run(main)
	require.GreaterOrEqual(t, len(cmd), 2)
	assert.Equal(t, []string{"/usr/local/bin/promoter", "plan"}, cmd[:2])
	flags := argFlags(cmd[2:])
	assert.Contains(t, cmd, "--fail-on-drift")
	assert.Equal(t, "markdown", flags["output"])
	assert.Equal(t, "168h", flags["drift"], "the template's default")
	outFile := flags["output-file"]
	m, ok := mountHolding(mounts(main), outFile)
	require.True(t, ok, "--output-file %s is on no volume", outFile)
	assert.False(t, m.ReadOnly)
	assert.NotNil(t, volumeNamed(t, pod, m.Name).EmptyDir)

	env := map[string]corev1.EnvVar{}
	for _, v := range main.Env {
		env[v.Name] = v
	}
	cfg := env["SLIPWAY_CONFIG_YAML"].ValueFrom
	require.NotNil(t, cfg)
	require.NotNil(t, cfg.ConfigMapKeyRef)
	assert.Equal(t, promoterConfig, cfg.ConfigMapKeyRef.Name)
	cm, err := e.argo.Kube.CoreV1().ConfigMaps(e.argo.Namespace).Get(context.Background(), promoterConfig, metav1.GetOptions{})
	require.NoError(t, err, "the kubelet would not start it")
	assert.Contains(t, cm.Data, cfg.ConfigMapKeyRef.Key)

	token := env["SLIPWAY_GIT_TOKEN_FILE"].Value
	tm, ok := mountHolding(mounts(main), token)
	require.True(t, ok, "SLIPWAY_GIT_TOKEN_FILE %s is on no volume", token)
	v := volumeNamed(t, pod, tm.Name)
	require.NotNil(t, v.Secret)
	assert.Equal(t, chartsRepoSecret, v.Secret.SecretName)
	assert.Contains(t, keyPaths(v.Secret.Items), strings.TrimPrefix(token, tm.MountPath+"/"))
	assertLockedDown(t, main.SecurityContext)
	assert.Equal(t, "slipway", pod.Spec.ServiceAccountName)
	return outFile
}

// assertReportPod checks the exit handler's notify pod: notify posts a
// report read base64 from the file of the template's raw artifact, whose
// data (in the template the controller hands the pod, after its last
// substitution) is returned decoded, with notify's flags (the reason
// decoded).
func (e *env) assertReportPod(t *testing.T, name string, pod *corev1.Pod) (map[string]string, string) {
	t.Helper()
	main := findContainer(t, pod.Spec.Containers, common.MainContainerName)
	assert.Equal(t, "/usr/local/bin/notify", run(main)[0])
	flags := notifyFlags(main)
	assert.Equal(t, "base64", flags["report-encoding"])
	decodeReason(t, flags)
	assert.Equal(t, "#releases", flags["channel"])
	assert.Equal(t, "https://argo-workflows.example/workflows/"+e.argo.Namespace+"/"+name, flags["workflow-url"])
	assertLockedDown(t, main.SecurityContext)

	var tmpl wfv1.Template
	for _, c := range pod.Spec.InitContainers {
		for _, v := range c.Env {
			if c.Name == common.InitContainerName && v.Name == common.EnvVarTemplate {
				require.NoError(t, json.Unmarshal([]byte(v.Value), &tmpl))
			}
		}
	}
	require.Len(t, tmpl.Inputs.Artifacts, 1, "the template handed to the pod's executor")
	art := tmpl.Inputs.Artifacts[0]
	require.NotNil(t, art.Raw)
	assert.Equal(t, art.Path, flags["report-file"], "notify reads the artifact's file")
	assert.Equal(t, "/slipway/report", filepath.Dir(art.Path))
	report, err := base64.StdEncoding.DecodeString(art.Raw.Data)
	require.NoError(t, err, "%q", art.Raw.Data)
	return flags, string(report)
}
