package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	argotemplate "github.com/argoproj/argo-workflows/v3/util/template"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/smoke"
	"github.com/slipway-deploy/slipway/internal/stepcli"
	"github.com/slipway-deploy/slipway/internal/testsupport/controlplane"
	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
	"github.com/slipway-deploy/slipway/internal/testsupport/helmhook"
)

// The Secret notify reads its webhook URL from (the README has the user
// create it); nothing is posted to the URL.
const (
	slackSecret = "slipway-slack-webhook"
	slackURL    = "http://127.0.0.1:9/slack-webhook-never-called"
)

// testPostSync is test 4, the success path: the whole post-sync workflow as the
// PostSync hook submits it. The controller creates the smoke-test pod; the
// test plays that pod's node (controlplane.PlayPod: the scheduler's, the
// kubelet's and the executor's writes), the promote step then runs on the
// real agent against the real promoter, and the exit handler's notify pod is
// created with the promotion's outcome, played too, and the workflow ends
// Succeeded.
func (e *env) testPostSync(t *testing.T) {
	repo := gitrepo.New(t, map[string]string{
		tagPath("integration"): tagFile("v42"), tagPath("staging"): tagFile("v41"), tagPath("production"): tagFile("v40"),
	})
	p := e.startPromoter(t, repo, "")
	run := e.submitHook(t)

	// (1) The smoke-test pod, as the controller made it from the template.
	smokePod := run.podOf(t, "smoke-test", 0)
	outputsDir := run.assertSmokePod(t, smokePod)

	// (2) Its node, played: the checks passed, and the step wrote its
	// outputs (the names smoke-test declares, in its --outputs-dir).
	smokeOut := map[string]string{"passed": "3", "failed": "0", "summary": "3 passed, 0 failed", "outcome": outcome.Passed.String()}
	e.argo.PlayPod(t, smokePod, controlplane.PodRun{ExitCode: 0, Files: smokeFiles(t, outputsDir, smokeOut)})

	// (3) The promote step runs after it, on the agent, and lands; (4) the
	// exit handler's notify pod is created.
	notifyPod := run.podOf(t, "notify", 0)
	wf := run.get(t)
	smokeNode := onlyNode(t, wf, "smoke-test", wfv1.NodeTypePod)
	assert.Equal(t, wfv1.NodeSucceeded, smokeNode.Phase)
	assert.Equal(t, controlplane.NodeName, smokeNode.HostNodeName, "the node is the pod the harness played")
	assert.Equal(t, smokeOut, outputs(smokeNode), "the smoke node's outputs are the files the step wrote, as the executor reported them")
	require.NotNil(t, smokeNode.Outputs.ExitCode)
	assert.Equal(t, "0", *smokeNode.Outputs.ExitCode, "the exit code the controller read from the kubelet's status")
	approve := onlyNode(t, wf, "approve", "")
	assert.Equal(t, wfv1.NodeSkipped, approve.Phase, "no approval asked for: the hook's approvalEnvironments is empty")

	promote := pluginNode(t, wf)
	assert.Equal(t, wfv1.NodeSucceeded, promote.Phase)
	assert.False(t, promote.StartedAt.Before(&smokeNode.FinishedAt), "promote started (%s) before smoke ended (%s)", promote.StartedAt, smokeNode.FinishedAt)
	promoted := outputs(promote)
	assert.Equal(t, map[string]string{
		"promoted": "true", "target-env": "staging", "reason": "promoted", "outcome": "promoted", "commit": repo.Head(),
	}, promoted)
	staging, _ := repo.Read(tagPath("staging"))
	assert.Contains(t, staging, "image_tag: v42")
	assert.Equal(t, string(wf.UID), trailers(repo, promoted["commit"])["Slipway-Workflow"])
	assert.Equal(t, 1, p.calls(t))
	e.assertAgentRanFor(t, wf)

	run.assertNotifyPod(t, notifyPod, map[string]string{
		"status": string(wfv1.WorkflowSucceeded), "outcome": promoted["outcome"], "promoted": promoted["promoted"],
		"target-env": promoted["target-env"], "reason": promoted["reason"], "failed-step": "",
	})
	e.argo.PlayPod(t, notifyPod, controlplane.PodRun{ExitCode: 0})
	wf = e.argo.WaitWorkflow(t, wf.Name, time.Minute, completed)
	assert.Equal(t, wfv1.WorkflowSucceeded, wf.Status.Phase, wf.Status.Message)
	assert.Equal(t, wfv1.NodeSucceeded, onlyNode(t, wf, "notify", wfv1.NodeTypePod).Phase)
}

// testPostSyncChecksFail: smoke checks that fail (exit code 1, failed > 0)
// are retried, after the template's backoff; nothing is promoted meanwhile.
// (The retries are not played out: the template's backoff, 30 s then 60 s,
// would hold the test for a minute and a half.) It runs beside the freeze
// test, with no promoter of its own: see testPostSyncInvalidSmoke.
func (e *env) testPostSyncChecksFail(t *testing.T) {
	run := e.submitHook(t)
	pod := run.podOf(t, "smoke-test", 0)
	outputsDir := run.assertSmokePod(t, pod)
	out := map[string]string{"passed": "2", "failed": "1", "summary": "2 passed, 1 failed (failed: search)",
		"outcome": outcome.ChecksFailed.String()}
	e.argo.PlayPod(t, pod, controlplane.PodRun{ExitCode: int32(outcome.ChecksFailed.ExitCode()), Files: smokeFiles(t, outputsDir, out)})

	backoff, err := time.ParseDuration(run.template(t, "smoke-test").RetryStrategy.Backoff.Duration)
	require.NoError(t, err)
	wf := e.argo.WaitWorkflow(t, run.name, time.Minute, func(wf *wfv1.Workflow) bool {
		n, ok := findNode(wf, "smoke-test", wfv1.NodeTypeRetry)
		return ok && strings.HasPrefix(n.Message, "Backoff for")
	})
	retryNode := onlyNode(t, wf, "smoke-test", wfv1.NodeTypeRetry)
	assert.Equal(t, wfv1.NodeRunning, retryNode.Phase, "the step is to be retried")
	assert.Contains(t, retryNode.Message, fmt.Sprintf(" %d seconds", int(backoff.Seconds())), "the template's first backoff")
	attempt := onlyNode(t, wf, "smoke-test", wfv1.NodeTypePod)
	assert.Equal(t, wfv1.NodeFailed, attempt.Phase)
	assert.Equal(t, out, outputs(attempt))
	require.NotNil(t, attempt.Outputs.ExitCode)
	assert.Equal(t, "1", *attempt.Outputs.ExitCode, "the exit code the retry rule reads")
	run.assertNoPromotion(t, wf)
	run.delete(t) // no one plays the retry
}

// testPostSyncInvalidSmoke: a smoke step refused as invalid (exit code 2)
// is not retried: the steps stop there, the promote step never runs and the
// exit handler tells notify what failed. Argo waits out the retry's first
// backoff before it reads the retry rule, so this takes half a minute: it
// runs beside the freeze test, with no promoter of its own (the freeze
// test's serves the port), and shows that none was called by the absence of
// any agent for it: the promoter is the agent pod's sidecar, called by the
// agent alone.
func (e *env) testPostSyncInvalidSmoke(t *testing.T) {
	run := e.submitHook(t)
	pod := run.podOf(t, "smoke-test", 0)
	outputsDir := run.assertSmokePod(t, pod)
	// An invalid spec is refused before any check runs: only the outcome
	// is written.
	out := map[string]string{"outcome": outcome.Invalid.String()}
	e.argo.PlayPod(t, pod, controlplane.PodRun{ExitCode: int32(outcome.Invalid.ExitCode()), Files: smokeFiles(t, outputsDir, out)})

	notifyPod := run.podOf(t, "notify", 0)
	wf := run.get(t)
	attempts := nodes(wf, "smoke-test", wfv1.NodeTypePod)
	require.Len(t, attempts, 1, "exit code 2 is not retried")
	assert.Equal(t, wfv1.NodeFailed, attempts[0].Phase)
	smokeOut := outputs(attempts[0])
	assert.Equal(t, map[string]string{"outcome": "invalid", "passed": "", "failed": "", "summary": ""}, smokeOut,
		"the outputs not written are the template's defaults")
	run.assertNoPromotion(t, wf)
	run.assertNotifyPod(t, notifyPod, map[string]string{
		"status": string(wfv1.WorkflowFailed), "outcome": smokeOut["outcome"], "reason": smokeOut["summary"],
		"promoted": "", "target-env": "", "failed-step": "smoke-test",
	})

	e.argo.PlayPod(t, notifyPod, controlplane.PodRun{ExitCode: 0})
	wf = e.argo.WaitWorkflow(t, wf.Name, time.Minute, completed)
	assert.Equal(t, wfv1.WorkflowFailed, wf.Status.Phase, "the smoke step failed, whatever notify did")
	assert.Equal(t, wfv1.NodeSucceeded, onlyNode(t, wf, "notify", wfv1.NodeTypePod).Phase)
	assert.Empty(t, nodes(wf, "promote", ""), "no promote node at all")
	run.assertNoPromotion(t, wf)
}

// hookRun is one post-sync Workflow submitted from the hook.
type hookRun struct {
	e      *env
	name   string
	wt     *wfv1.WorkflowTemplate // post-sync, as in workflows/
	notify *wfv1.WorkflowTemplate // notify, as in workflows/
	params map[string]string      // workflow.parameters.<name>: the hook's, else the template's defaults
	values map[string]any         // the chart values the hook was rendered with
}

// submitHook renders workflows/hooks/post-sync.yaml as Helm would with the
// README's values (as the hooks test does) and creates it as Argo CD does
// with a hook: as written, plus Argo CD's tracking label.
func (e *env) submitHook(t *testing.T) *hookRun {
	t.Helper()
	values := readmeValues(t, e.root)
	hook := renderHook(t, filepath.Join(e.root, "workflows", "hooks", "post-sync.yaml"), values)
	require.NotNil(t, hook.Spec.WorkflowTemplateRef)
	require.Equal(t, "post-sync", hook.Spec.WorkflowTemplateRef.Name)
	hook.Labels = map[string]string{"app.kubernetes.io/instance": app}
	created, err := e.argo.Argo.ArgoprojV1alpha1().Workflows(e.argo.Namespace).Create(context.Background(), hook, metav1.CreateOptions{})
	require.NoError(t, err)

	r := &hookRun{e: e, name: created.Name, values: values,
		wt:     loadTemplate(t, filepath.Join(e.root, "workflows", "post-sync.yaml")),
		notify: loadTemplate(t, filepath.Join(e.root, "workflows", "notify.yaml")),
		params: map[string]string{}}
	for _, p := range r.wt.Spec.Arguments.Parameters {
		if p.Value != nil {
			r.params["workflow.parameters."+p.Name] = p.Value.String()
		}
	}
	for _, p := range hook.Spec.Arguments.Parameters {
		r.params["workflow.parameters."+p.Name] = p.Value.String()
	}
	return r
}

func (r *hookRun) get(t *testing.T) *wfv1.Workflow {
	t.Helper()
	wf, err := r.e.argo.Argo.ArgoprojV1alpha1().Workflows(r.e.argo.Namespace).Get(context.Background(), r.name, metav1.GetOptions{})
	require.NoError(t, err)
	return wf
}

func (r *hookRun) delete(t *testing.T) {
	t.Helper()
	require.NoError(t, r.e.argo.Argo.ArgoprojV1alpha1().Workflows(r.e.argo.Namespace).Delete(context.Background(), r.name, metav1.DeleteOptions{}))
}

// podOf waits for the i-th pod node of template tmpl and returns its pod as
// the controller created it.
func (r *hookRun) podOf(t *testing.T, tmpl string, i int) *corev1.Pod {
	t.Helper()
	wf := r.e.argo.WaitWorkflow(t, r.name, time.Minute, func(wf *wfv1.Workflow) bool {
		return len(nodes(wf, tmpl, wfv1.NodeTypePod)) > i || wf.Status.Phase.Completed()
	})
	found := nodes(wf, tmpl, wfv1.NodeTypePod)
	require.Greater(t, len(found), i, "pod %d of %s never created; workflow %s", i, tmpl, wf.Status.Phase)
	return r.e.argo.WaitPod(t, r.name, found[i].ID, time.Minute)
}

func (r *hookRun) template(t *testing.T, name string) *wfv1.Template {
	t.Helper()
	tmpl := r.wt.GetTemplateByName(name)
	require.NotNil(t, tmpl, "post-sync has no template %s", name)
	return tmpl
}

// assertSmokePod checks the smoke-test pod against the template it was made
// from, with the workflow's parameters filled in, and the wiring that makes
// it work: the init container installs the binary the main container runs,
// the outputs land where the template reads them, every file the step
// writes is on a writable volume. It returns the step's --outputs-dir.
func (r *hookRun) assertSmokePod(t *testing.T, pod *corev1.Pod) string {
	t.Helper()
	tmpl := r.template(t, "smoke-test")
	wantMain := substitute(t, *tmpl.Container, r.params)
	wantMain.Name = common.MainContainerName
	var wantInit []corev1.Container
	for _, c := range tmpl.InitContainers {
		wantInit = append(wantInit, substitute(t, c.Container, r.params))
	}
	wantVolumes := substitute(t, tmpl.Volumes, r.params)
	argoVolumes := addedVolumes(t, pod, wantVolumes)

	// Argo's containers and ours, nothing else.
	assert.ElementsMatch(t, []string{common.MainContainerName, common.WaitContainerName}, containerNames(pod.Spec.Containers))
	assert.Equal(t, append([]string{common.InitContainerName}, containerNames(wantInit)...), containerNames(pod.Spec.InitContainers))

	main := view(t, findContainer(t, pod.Spec.Containers, common.MainContainerName), argoVolumes)
	assert.Equal(t, view(t, &wantMain, nil), main, "the main container is the template's")
	var init []containerView
	for _, c := range wantInit {
		got := view(t, findContainer(t, pod.Spec.InitContainers, c.Name), argoVolumes)
		assert.Equal(t, view(t, &c, nil), got, "init container %s is the template's", c.Name)
		init = append(init, got)
	}
	assert.Equal(t, normalizeVolumes(t, wantVolumes), normalizeVolumes(t, podVolumes(pod, argoVolumes)), "the pod's volumes are the template's")
	assert.Equal(t, "slipway", pod.Spec.ServiceAccountName)

	// What the parameters became, for the values a mistake would show in.
	require.NotEmpty(t, main.Run)
	flags := argFlags(main.Run[1:])
	assert.Equal(t, r.params["workflow.parameters.environment"], flags["env"])
	assert.Equal(t, "integration", flags["env"], "the README's environment")
	assert.Equal(t, r.values["slipway"].(map[string]any)["smoke"].(map[string]any)["baseURL"], main.Env["SLIPWAY_BASE_URL"], "the hook's smoke.baseURL")

	// The init container puts the binary the main container runs into a
	// volume they share: `<step> --install DIR`.
	require.Len(t, init, 1)
	require.Len(t, init[0].Run, 3)
	assert.Equal(t, "--install", init[0].Run[1])
	installDir := init[0].Run[2]
	shared, ok := init[0].Mounts[installDir]
	require.True(t, ok, "the init container installs into %s, which it does not mount", installDir)
	assert.False(t, shared.ReadOnly)
	mainBin, ok := main.Mounts[installDir]
	require.True(t, ok, "the main container does not mount %s", installDir)
	assert.Equal(t, shared.Name, mainBin.Name, "the same volume")
	assert.True(t, mainBin.ReadOnly, "the main container only runs what was installed")
	assert.Equal(t, path.Join(installDir, path.Base(init[0].Run[0])), main.Run[0], "the main container runs the binary installed")
	assert.Equal(t, "smoke-test", path.Base(main.Run[0]))

	// The spec comes from the app's ConfigMap <app>-smoke-test.
	spec := main.Env["SLIPWAY_SPEC"]
	specMount, ok := mountHolding(main.Mounts, spec)
	require.True(t, ok, "SLIPWAY_SPEC %s is on no volume", spec)
	specVol := volumeNamed(t, pod, specMount.Name)
	require.NotNil(t, specVol.ConfigMap, "the spec's volume")
	assert.Equal(t, app+"-smoke-test", specVol.ConfigMap.Name)
	assert.Contains(t, keyPaths(specVol.ConfigMap.Items), strings.TrimPrefix(spec, specMount.MountPath+"/"))

	// Every output the template reads is one smoke-test writes, in its
	// --outputs-dir, on a writable emptyDir; so are HOME and TMPDIR (the
	// root file system is read-only).
	outputsDir := flags["outputs-dir"]
	require.NotEmpty(t, outputsDir, "smoke-test is given no --outputs-dir")
	var read []string
	for _, p := range tmpl.Outputs.Parameters {
		require.NotNil(t, p.ValueFrom, p.Name)
		assert.Equal(t, outputsDir, path.Dir(p.ValueFrom.Path), "output %s", p.Name)
		read = append(read, path.Base(p.ValueFrom.Path))
	}
	assert.ElementsMatch(t, smokeOutputNames(), read, "the template reads every output smoke-test writes, by its name")
	for _, dir := range []string{outputsDir, main.Env["HOME"], main.Env["TMPDIR"]} {
		m, ok := mountHolding(main.Mounts, dir)
		require.True(t, ok, "%s is on no volume", dir)
		assert.False(t, m.ReadOnly, dir)
		assert.NotNil(t, volumeNamed(t, pod, m.Name).EmptyDir, "%s is on an emptyDir", dir)
	}
	for _, c := range append([]containerView{main}, init...) {
		assertLockedDown(t, c.SecurityContext)
	}
	return outputsDir
}

// assertNotifyPod checks the exit handler's notify pod: what notify reads
// (its flags, given as arguments or by their environment twins) and that it
// runs as the template says.
func (r *hookRun) assertNotifyPod(t *testing.T, pod *corev1.Pod, want map[string]string) {
	t.Helper()
	tmpl := r.notify.GetTemplateByName("notify")
	require.NotNil(t, tmpl)
	main := findContainer(t, pod.Spec.Containers, common.MainContainerName)
	require.NotEmpty(t, run(main))
	got := notifyFlags(main)
	decodeReason(t, got)
	for k, v := range want {
		assert.Equal(t, v, got[k], "notify's --%s", k)
	}
	assert.Equal(t, app, got["app"])
	assert.Equal(t, r.params["workflow.parameters.environment"], got["env"])
	assert.Equal(t, r.params["workflow.parameters.image-tag"], got["tag"])
	assert.Equal(t, r.params["workflow.parameters.argocd-url"], got["argocd-url"])
	assert.Equal(t, r.params["workflow.parameters.argo-workflows-url"]+"/workflows/"+r.e.argo.Namespace+"/"+r.name, got["workflow-url"])
	assert.NotContains(t, strings.Join(slices.Collect(maps.Values(got)), "\n"), "{{", "every placeholder filled in")

	// The webhook URL is read from the Secret's key, mounted.
	file := got["webhook-url-file"]
	m, ok := mountHolding(mounts(main), file)
	require.True(t, ok, "--webhook-url-file %s is on no volume", file)
	v := volumeNamed(t, pod, m.Name)
	require.NotNil(t, v.Secret)
	assert.Equal(t, slackSecret, v.Secret.SecretName)
	assert.Contains(t, keyPaths(v.Secret.Items), strings.TrimPrefix(file, m.MountPath+"/"))

	assert.Equal(t, r.params["workflow.parameters.slipway-image"], main.Image)
	assert.Equal(t, "/usr/local/bin/notify", run(main)[0])
	assert.Equal(t, tmpl.Container.SecurityContext, main.SecurityContext, "notify's security context is the template's")
	assertLockedDown(t, main.SecurityContext)
}

// assertNoPromotion: the promote step never ran: no plugin node, no
// WorkflowTaskSet (the agent's work list), no agent pod (the only caller of
// the promoter).
func (r *hookRun) assertNoPromotion(t *testing.T, wf *wfv1.Workflow) {
	t.Helper()
	for _, n := range wf.Status.Nodes {
		assert.NotEqual(t, wfv1.NodeTypePlugin, n.Type, "plugin node %s", n.Name)
	}
	assert.False(t, r.e.argo.TaskSetExists(t, wf.Name), "a WorkflowTaskSet was made for %s", wf.Name)
	for _, a := range r.e.argo.AgentRuns() {
		assert.NotEqual(t, wf.Name, a.Env[common.EnvVarWorkflowName], "an agent pod ran for %s", wf.Name)
	}
}

// smokeOutputNames are the outputs smoke-test writes into --outputs-dir:
// those it declares, and outcome (every step's).
func smokeOutputNames() []string { return append(slices.Clone(smoke.Outputs), "outcome") }

// smokeFiles are the files smoke-test writes into dir for out.
func smokeFiles(t *testing.T, dir string, out map[string]string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for k, v := range out {
		require.Contains(t, smokeOutputNames(), k, "smoke-test writes no output %s", k)
		files[path.Join(dir, k)] = v
	}
	return files
}

// containerView is what a container runs and with what.
type containerView struct {
	Image string
	// Run is the command and its arguments as run: Argo runs a main
	// container's under its emissary (argoexec emissary ... -- CMD ARGS).
	Run []string
	// Env is the container's own, without Argo's ARGO_*.
	Env map[string]string
	// Mounts are by path, without those of Argo's volumes.
	Mounts          map[string]corev1.VolumeMount
	SecurityContext *corev1.SecurityContext
	Resources       map[string]string
}

func view(t *testing.T, c *corev1.Container, argoVolumes map[string]bool) containerView {
	t.Helper()
	v := containerView{Image: c.Image, Run: run(c), Env: map[string]string{}, Mounts: map[string]corev1.VolumeMount{},
		SecurityContext: c.SecurityContext, Resources: map[string]string{}}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "ARGO_") {
			continue
		}
		require.Nil(t, e.ValueFrom, "env %s", e.Name)
		v.Env[e.Name] = e.Value
	}
	for _, m := range c.VolumeMounts {
		if !argoVolumes[m.Name] {
			v.Mounts[m.MountPath] = m
		}
	}
	for k, q := range c.Resources.Requests {
		v.Resources["requests."+string(k)] = q.String()
	}
	for k, q := range c.Resources.Limits {
		v.Resources["limits."+string(k)] = q.String()
	}
	return v
}

func mounts(c *corev1.Container) map[string]corev1.VolumeMount {
	out := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		out[m.MountPath] = m
	}
	return out
}

// run is what c runs: under Argo's emissary, what follows its "--".
func run(c *corev1.Container) []string {
	all := append(slices.Clone(c.Command), c.Args...)
	if len(all) > 1 && all[0] == common.VarRunArgoPath+"/argoexec" && all[1] == "emissary" {
		if i := slices.Index(all, "--"); i >= 0 {
			return all[i+1:]
		}
	}
	return all
}

// addedVolumes are the pod's volumes that the template does not declare,
// which must be Argo's own (its binary and scratch) or the ServiceAccount
// token the apiserver adds.
func addedVolumes(t *testing.T, pod *corev1.Pod, declared []corev1.Volume) map[string]bool {
	t.Helper()
	ours := map[string]bool{}
	for _, v := range declared {
		ours[v.Name] = true
	}
	added := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		if ours[v.Name] {
			continue
		}
		saToken := v.Projected != nil && slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool {
			return s.ServiceAccountToken != nil
		})
		assert.True(t, v.Name == "var-run-argo" || v.Name == "tmp-dir-argo" || saToken, "volume %s is neither the template's nor Argo's", v.Name)
		added[v.Name] = true
	}
	return added
}

func podVolumes(pod *corev1.Pod, skip map[string]bool) []corev1.Volume {
	var out []corev1.Volume
	for _, v := range pod.Spec.Volumes {
		if !skip[v.Name] {
			out = append(out, v)
		}
	}
	return out
}

// normalizeVolumes fills in the apiserver's defaults (a file mode) and
// round-trips through JSON, so that quantities compare by value.
func normalizeVolumes(t *testing.T, vs []corev1.Volume) map[string]corev1.Volume {
	t.Helper()
	out := map[string]corev1.Volume{}
	for _, v := range vs {
		v = *v.DeepCopy()
		if v.ConfigMap != nil && v.ConfigMap.DefaultMode == nil {
			v.ConfigMap.DefaultMode = ptr(corev1.ConfigMapVolumeSourceDefaultMode)
		}
		if v.Secret != nil && v.Secret.DefaultMode == nil {
			v.Secret.DefaultMode = ptr(corev1.SecretVolumeSourceDefaultMode)
		}
		out[v.Name] = roundTrip(t, v)
	}
	return out
}

func roundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out T
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// substitute fills in the workflow's parameters as the controller does
// ({{workflow.parameters.x}} in the template's JSON), and fails on any
// placeholder left.
func substitute[T any](t *testing.T, v T, params map[string]string) T {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	s, err := argotemplate.Replace(string(b), params, false)
	require.NoError(t, err)
	var out T
	require.NoError(t, json.Unmarshal([]byte(s), &out))
	return out
}

func assertLockedDown(t *testing.T, sc *corev1.SecurityContext) {
	t.Helper()
	require.NotNil(t, sc)
	assert.Equal(t, ptr(true), sc.RunAsNonRoot)
	assert.Equal(t, ptr(false), sc.AllowPrivilegeEscalation)
	assert.Equal(t, ptr(true), sc.ReadOnlyRootFilesystem)
	require.NotNil(t, sc.Capabilities)
	assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
}

// notifyFlags are notify's flags as it reads them: --name=value arguments,
// else their environment twins (stepcli.Env: --target-env is
// SLIPWAY_TARGET_ENV).
func notifyFlags(c *corev1.Container) map[string]string {
	flags := map[string]string{}
	for _, e := range c.Env {
		if rest, ok := strings.CutPrefix(e.Name, "SLIPWAY_"); ok {
			name := strings.ToLower(strings.ReplaceAll(rest, "_", "-"))
			if stepcli.Env(name)[0] == e.Name {
				flags[name] = e.Value
			}
		}
	}
	for k, v := range argFlags(run(c)[1:]) {
		flags[k] = v
	}
	return flags
}

// decodeReason replaces notify's --reason in flags by its text: the
// workflows pass it base64 (--reason-encoding), past the controller's
// substitution of the pod's spec.
func decodeReason(t *testing.T, flags map[string]string) {
	t.Helper()
	require.Equal(t, "base64", flags["reason-encoding"], "notify's --reason-encoding")
	reason, err := base64.StdEncoding.DecodeString(flags["reason"])
	require.NoError(t, err, "--reason %q", flags["reason"])
	flags["reason"] = string(reason)
}

// argFlags reads --name=value arguments.
func argFlags(args []string) map[string]string {
	out := map[string]string{}
	for _, a := range args {
		if k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok && strings.HasPrefix(a, "--") {
			out[k] = v
		}
	}
	return out
}

func mountHolding(ms map[string]corev1.VolumeMount, file string) (corev1.VolumeMount, bool) {
	for p, m := range ms {
		if file == p || strings.HasPrefix(file, p+"/") {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

func volumeNamed(t *testing.T, pod *corev1.Pod, name string) corev1.Volume {
	t.Helper()
	for _, v := range pod.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("pod %s has no volume %s", pod.Name, name)
	return corev1.Volume{}
}

func keyPaths(items []corev1.KeyToPath) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Path)
	}
	return out
}

func findContainer(t *testing.T, cs []corev1.Container, name string) *corev1.Container {
	t.Helper()
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	t.Fatalf("no container %s", name)
	return nil
}

func containerNames(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// nodes are wf's nodes of template tmpl (by name or templateRef) and type
// typ (any if empty), in the order they started.
func nodes(wf *wfv1.Workflow, tmpl string, typ wfv1.NodeType) []wfv1.NodeStatus {
	var out []wfv1.NodeStatus
	for _, n := range wf.Status.Nodes {
		name := n.TemplateName
		if n.TemplateRef != nil {
			name = n.TemplateRef.Template
		}
		if (name == tmpl || n.DisplayName == tmpl) && (typ == "" || n.Type == typ) {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b wfv1.NodeStatus) int {
		if c := a.StartedAt.Compare(b.StartedAt.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

func findNode(wf *wfv1.Workflow, tmpl string, typ wfv1.NodeType) (wfv1.NodeStatus, bool) {
	found := nodes(wf, tmpl, typ)
	if len(found) != 1 {
		return wfv1.NodeStatus{}, false
	}
	return found[0], true
}

func onlyNode(t *testing.T, wf *wfv1.Workflow, tmpl string, typ wfv1.NodeType) wfv1.NodeStatus {
	t.Helper()
	found := nodes(wf, tmpl, typ)
	require.Len(t, found, 1, "nodes of %s (%s) in %s", tmpl, typ, wf.Name)
	return found[0]
}

func loadTemplate(t *testing.T, file string) *wfv1.WorkflowTemplate {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var wt wfv1.WorkflowTemplate
	require.NoError(t, yaml.UnmarshalStrict(b, &wt), file)
	return &wt
}

// readmeValues are the chart values the README shows for the hooks.
func readmeValues(t *testing.T, root string) map[string]any {
	t.Helper()
	values, err := helmhook.READMEValues(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	return values
}

// renderHook renders a hook as Helm does for the Argo CD app.
func renderHook(t *testing.T, file string, values map[string]any) *wfv1.Workflow {
	t.Helper()
	wf, err := helmhook.Render(file, app, values)
	require.NoError(t, err)
	return wf
}

func ptr[T any](v T) *T { return &v }
