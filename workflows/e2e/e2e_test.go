// Package e2e runs Slipway's WorkflowTemplates on a real Argo control plane
// (internal/testsupport/controlplane): Argo's own controller resolves them
// and hands the promote step to Argo's own agent, which calls the real
// promoter binary, which writes to a real git server. `make e2e` runs it.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/slipway-deploy/slipway/internal/testsupport/controlplane"
	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
	"github.com/slipway-deploy/slipway/internal/testsupport/serverproc"
)

// promoteStep is the template the tests run: the promote step of the
// post-sync WorkflowTemplate.
var promoteStep = wfv1.TemplateRef{Name: "post-sync", Template: "promote"}

// promoterAddr is where the promoter is served: the agent calls
// http://localhost:<containerPort> of the plugin's sidecar (4355).
const promoterAddr = "127.0.0.1:4355"

// The plugin's name (plugin/plugin.yaml), under which the agent keeps its token.
const pluginName = "promoter"

const app = "frontend"

func tagPath(env string) string { return "charts/app-config/image-tags/" + env + "/" + app }

func tagFile(tag string) string {
	return "image_tag: " + tag + "\nautomatic_deploys_enabled: true\npromote_deployment: true\n"
}

// TestPostSyncOnArgo runs the post-sync workflow on one control plane: its
// promote step alone (tests 1-3 of issue 12), and the whole workflow as the
// PostSync hook submits it (test 4). One promoter is served at a time (its
// address is fixed).
func TestPostSyncOnArgo(t *testing.T) {
	root, err := controlplane.RepoRoot()
	require.NoError(t, err)
	promoter := buildPromoter(t, root) // builds while the control plane starts
	argo := controlplane.Start(t, controlplane.Options{
		ServiceAccounts: []string{"slipway"}, // the templates' serviceAccountName
		Manifests: append([]string{
			filepath.Join(root, "workflows", "rbac.yaml"),
			filepath.Join(root, "plugin", "rbac.yaml"),
			filepath.Join(root, "plugin", "promoter-executor-plugin-configmap.yaml"),
		}, workflowTemplates(t, root)...),
	})
	// The Secret the README has the user create for notify.
	_, err = argo.Kube.CoreV1().Secrets(argo.Namespace).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: slackSecret},
		StringData: map[string]string{"url": slackURL},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	// The plan's: the git token's Secret (the README's), and the plugin's
	// configuration as the kustomization installs it.
	_, err = argo.Kube.CoreV1().Secrets(argo.Namespace).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: chartsRepoSecret},
		StringData: map[string]string{"token": "never-used"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	example, err := os.ReadFile(filepath.Join(root, "plugin", "promoter.example.yaml"))
	require.NoError(t, err)
	_, err = argo.Kube.CoreV1().ConfigMaps(argo.Namespace).Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: promoterConfig},
		Data:       map[string]string{"promoter.yaml": string(example)},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	e := &env{t: t, argo: argo, promoter: promoter(), root: root}

	t.Run("promotes", e.testPromotes)
	t.Run("stale request writes nothing", e.testStale)
	t.Run("post-sync: smoke passes, promotes, notifies", e.testPostSync)
	// Those that wait (for the clock, for Argo's backoff) run side by side;
	// only the freeze test serves the promoter (its address is fixed).
	t.Run("waiting", func(t *testing.T) {
		t.Run("waits out a freeze", func(t *testing.T) { t.Parallel(); e.testWaitsOutAFreeze(t) })
		t.Run("post-sync: smoke checks fail, retried", func(t *testing.T) { t.Parallel(); e.testPostSyncChecksFail(t) })
		t.Run("post-sync: invalid smoke spec, not retried, notify told", func(t *testing.T) { t.Parallel(); e.testPostSyncInvalidSmoke(t) })
		t.Run("promoter-plan: the CronWorkflow runs it, drift is posted", func(t *testing.T) { t.Parallel(); e.testPlanFromCron(t) })
		t.Run("promoter-plan: a plan that did not run is posted", func(t *testing.T) { t.Parallel(); e.testPlanNotRun(t) })
		t.Run("promoter-plan: no drift, nothing posted", func(t *testing.T) { t.Parallel(); e.testPlanNoDrift(t) })
	})
}

type env struct {
	t        *testing.T
	argo     *controlplane.Argo
	promoter string // the binary
	root     string // the repository
}

// testPromotes: the promote step goes Succeeded with our outputs, and the
// charts repo holds the promotion commit with its trailers.
func (e *env) testPromotes(t *testing.T) {
	repo := gitrepo.New(t, map[string]string{
		tagPath("integration"): tagFile("v42"), tagPath("staging"): tagFile("v41"), tagPath("production"): tagFile("v40"),
	})
	p := e.startPromoter(t, repo, "")
	wf := e.submit(t, "integration", "v42")
	wf = e.argo.WaitWorkflow(t, wf.Name, time.Minute, completed)

	require.Equal(t, wfv1.WorkflowSucceeded, wf.Status.Phase, wf.Status.Message)
	node := pluginNode(t, wf)
	assert.Equal(t, wfv1.NodeSucceeded, node.Phase)
	out := outputs(node)
	assert.Equal(t, map[string]string{
		"promoted": "true", "target-env": "staging", "reason": "promoted", "outcome": "promoted",
		"commit": repo.Head(), // the charts repo's new head
	}, out, "the node's outputs are exactly the template's")
	require.NotNil(t, node.Outputs.ExitCode, "the exit code the template's retryStrategy reads")
	assert.Equal(t, "0", *node.Outputs.ExitCode)

	staging, _ := repo.Read(tagPath("staging"))
	assert.Contains(t, staging, "image_tag: v42")
	assert.Equal(t, map[string]string{
		"Slipway-App": app, "Slipway-Env": "staging", "Slipway-Tag": "v42", "Slipway-Previous-Tag": "v41",
		"Slipway-Source-Env": "integration", "Slipway-Workflow": string(wf.UID),
	}, trailers(repo, out["commit"]))
	assert.Equal(t, 1, p.calls(t), "the agent calls a step that succeeded once")
	e.assertAgentRanFor(t, wf)
}

// testWaitsOutAFreeze: with a freeze on the target, the node stays Running
// and the agent calls again after each requeue; once the freeze ends the
// promotion lands.
func (e *env) testWaitsOutAFreeze(t *testing.T) {
	repo := gitrepo.New(t, map[string]string{
		tagPath("integration"): tagFile("v42"), tagPath("staging"): tagFile("v41"), tagPath("production"): tagFile("v40"),
	})
	// Freezes are set to the minute: the shortest one ends at the next
	// minute, or the one after if that is too near for the step to start.
	now := time.Now().UTC()
	from, until := now.Truncate(time.Minute), now.Truncate(time.Minute).Add(time.Minute)
	if until.Sub(now) < 15*time.Second {
		until = until.Add(time.Minute)
	}
	p := e.startPromoter(t, repo, fmt.Sprintf("freezes:\n  staging:\n    timezone: UTC\n    weekly:\n      - {from: %q, to: %q}\n",
		from.Format("Mon 15:04"), until.Format("Mon 15:04")))
	wf := e.submit(t, "integration", "v42")

	var phases []wfv1.NodePhase // the plugin node's phase at every change seen
	var waiting string
	wf = e.argo.WaitWorkflow(t, wf.Name, time.Until(until)+time.Minute, func(wf *wfv1.Workflow) bool {
		for _, n := range wf.Status.Nodes {
			if n.Type != wfv1.NodeTypePlugin {
				continue
			}
			if len(phases) == 0 || phases[len(phases)-1] != n.Phase {
				phases = append(phases, n.Phase)
			}
			if n.Phase == wfv1.NodeRunning && n.Message != "" {
				waiting = n.Message
			}
		}
		return completed(wf)
	})

	require.Equal(t, wfv1.WorkflowSucceeded, wf.Status.Phase, wf.Status.Message)
	assert.Contains(t, waiting, "until "+until.Format(time.RFC3339), "the node waited, Running, for the freeze")
	require.NotEmpty(t, phases, "the plugin node was never seen")
	assert.Equal(t, wfv1.NodeSucceeded, phases[len(phases)-1])
	assert.NotContains(t, phases, wfv1.NodeFailed)
	assert.NotContains(t, phases, wfv1.NodeError)
	// Every call before the last was answered Running with a requeue: a
	// second call is the agent honouring it.
	calls := p.calls(t)
	t.Logf("freeze until %s; the agent called %d times; node phases seen: %v", until.Format(time.TimeOnly), calls, phases)
	assert.GreaterOrEqual(t, calls, 2, "the agent called again after the promoter's requeue")

	out := outputs(pluginNode(t, wf))
	assert.Equal(t, map[string]string{
		"promoted": "true", "target-env": "staging", "reason": "promoted", "outcome": "promoted", "commit": repo.Head(),
	}, out)
	committed, err := time.Parse(time.RFC3339, repo.Git("log", "-1", "--format=%cI", out["commit"]))
	require.NoError(t, err)
	assert.False(t, committed.Before(until), "the promotion was written at %s, before the freeze ended at %s", committed, until)
}

// testStale: a post-sync for a tag the source no longer runs promotes
// nothing and writes nothing.
func (e *env) testStale(t *testing.T) {
	repo := gitrepo.New(t, map[string]string{
		tagPath("integration"): tagFile("v43"), tagPath("staging"): tagFile("v41"), tagPath("production"): tagFile("v40"),
	})
	head := repo.Head()
	p := e.startPromoter(t, repo, "")
	wf := e.submit(t, "integration", "v42") // v42's late post-sync
	wf = e.argo.WaitWorkflow(t, wf.Name, time.Minute, completed)

	require.Equal(t, wfv1.WorkflowSucceeded, wf.Status.Phase, wf.Status.Message)
	node := pluginNode(t, wf)
	assert.Equal(t, wfv1.NodeSucceeded, node.Phase)
	assert.Equal(t, map[string]string{
		"promoted": "false", "target-env": "staging", "commit": "", "reason": "stale: integration now runs v43", "outcome": "stale",
	}, outputs(node))
	assert.Equal(t, head, repo.Head(), "nothing written")
	assert.Zero(t, repo.Pushes(), "nothing pushed")
	assert.Equal(t, 1, p.calls(t))
}

// submit creates the Workflow as Argo CD's PostSync hook would: the hook
// resource as written in the app's manifests (hook annotations, a generated
// name), with the environment's app, environment and image tag.
func (e *env) submit(t *testing.T, environment, tag string) *wfv1.Workflow {
	t.Helper()
	wf := &wfv1.Workflow{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "post-sync-" + app + "-",
			Labels:       map[string]string{"app.kubernetes.io/instance": app + "-" + environment},
			Annotations: map[string]string{
				"argocd.argoproj.io/hook":               "PostSync",
				"argocd.argoproj.io/hook-delete-policy": "HookSucceeded",
			},
		},
		Spec: wfv1.WorkflowSpec{
			Entrypoint:         "post-sync",
			ServiceAccountName: "slipway",
			Arguments: wfv1.Arguments{Parameters: []wfv1.Parameter{
				{Name: "app", Value: wfv1.AnyStringPtr(app)},
				{Name: "environment", Value: wfv1.AnyStringPtr(environment)},
				{Name: "image-tag", Value: wfv1.AnyStringPtr(tag)},
			}},
			Templates: []wfv1.Template{{
				Name:  "post-sync",
				Steps: []wfv1.ParallelSteps{{Steps: []wfv1.WorkflowStep{{Name: "promote", TemplateRef: &promoteStep}}}},
			}},
		},
	}
	created, err := e.argo.Argo.ArgoprojV1alpha1().Workflows(e.argo.Namespace).Create(context.Background(), wf, metav1.CreateOptions{})
	require.NoError(t, err)
	return created
}

func completed(wf *wfv1.Workflow) bool { return wf.Status.Phase.Completed() }

// pluginNode is the workflow's one plugin node: the promote step.
func pluginNode(t *testing.T, wf *wfv1.Workflow) wfv1.NodeStatus {
	t.Helper()
	var found []wfv1.NodeStatus
	for _, n := range wf.Status.Nodes {
		if n.Type == wfv1.NodeTypePlugin {
			found = append(found, n)
		}
	}
	require.Len(t, found, 1, "plugin nodes of %s", wf.Name)
	return found[0]
}

func outputs(n wfv1.NodeStatus) map[string]string {
	out := map[string]string{}
	if n.Outputs != nil {
		for _, p := range n.Outputs.Parameters {
			if p.Value != nil {
				out[p.Name] = p.Value.String()
			}
		}
	}
	return out
}

func trailers(repo *gitrepo.Server, rev string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(repo.Git("log", "-1", "--format=%(trailers:only,unfold)", rev), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			out[k] = v
		}
	}
	return out
}

// assertAgentRanFor checks that the agent that served wf was started from
// the pod the controller made for it, and that in that pod our plugin's
// sidecar would find the token the agent sends where its --token-file says.
func (e *env) assertAgentRanFor(t *testing.T, wf *wfv1.Workflow) {
	t.Helper()
	var run *controlplane.AgentRun
	for _, r := range e.argo.AgentRuns() {
		if r.Env[common.EnvVarWorkflowName] == wf.Name {
			run = &r
		}
	}
	require.NotNil(t, run, "no agent pod was run for workflow %s", wf.Name)
	require.NoError(t, run.Err)
	assert.Equal(t, string(wf.UID), run.Env[common.EnvVarWorkflowUID])
	assert.Equal(t, `["`+pluginName+`"]`, run.Env[common.EnvVarPluginNames])
	assert.Equal(t, `["http://localhost:4355"]`, run.Env[common.EnvVarPluginAddresses])

	var sidecar *corev1.Container
	for i, c := range run.Spec.Spec.Containers {
		if c.Name == pluginName {
			sidecar = &run.Spec.Spec.Containers[i]
		}
	}
	require.NotNil(t, sidecar, "the agent pod has our plugin's sidecar")
	// The agent's /var/run/argo/<plugin>/token is the sidecar's
	// <mountPath>/token (a subPath of the same volume).
	var tokenFile string
	for _, m := range sidecar.VolumeMounts {
		if m.SubPath == pluginName {
			tokenFile = path.Join(m.MountPath, "token")
		}
	}
	assert.Contains(t, strings.Join(sidecar.Args, " "), "--token-file "+tokenFile,
		"the sidecar reads the token at the path Argo mounts it (%s)", tokenFile)
}

// workflowTemplates lists workflows/*.yaml holding a WorkflowTemplate.
func workflowTemplates(t *testing.T, root string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "workflows", "*.yaml"))
	require.NoError(t, err)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var tm metav1.TypeMeta
		require.NoError(t, yaml.Unmarshal(b, &tm), f)
		if tm.Kind == "WorkflowTemplate" {
			out = append(out, f)
		}
	}
	require.NotEmpty(t, out)
	return out
}

// buildPromoter starts building the promoter and returns a func that waits
// for the build and returns the binary.
func buildPromoter(t *testing.T, root string) func() string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "promoter")
	cmd := exec.Command("go", "build", "-o", bin, "./plugin")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start(), "go build ./plugin")
	wait := sync.OnceValue(cmd.Wait)
	t.Cleanup(func() { _ = wait() }) // before its folder is removed
	return func() string {
		require.NoError(t, wait(), "go build ./plugin: %s", out.String())
		return bin
	}
}

type promoter struct {
	proc *serverproc.Process
}

// startPromoter serves the real promoter on promoterAddr until t ends,
// configured for repo (extra is appended to its config), with the token
// file the agent reads.
func (e *env) startPromoter(t *testing.T, repo *gitrepo.Server, extra string) *promoter {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "promoter.yaml")
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`repo:
  url: %s
  branch: main
  pathTemplate: "charts/app-config/image-tags/{{.Env}}/{{.App}}"
environments: [integration, staging, production]
releasePattern: "^v[0-9]+$"
git:
  authorName: Slipway promoter
  authorEmail: slipway@example.invalid
  username: %s
maxRequeue: 2s
%s`, repo.URL(), gitrepo.User, extra)), 0o600))
	proc := serverproc.Start(t, serverproc.Spec{
		Name: "promoter", Path: e.promoter, LogDir: dir,
		Env: append(os.Environ(), "SLIPWAY_GIT_TOKEN="+gitrepo.Password),
		Args: []string{"--config", config, "--addr", promoterAddr, "--log-format", "json",
			"--token-file", e.argo.PluginTokenFile(t, pluginName)},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, proc.WaitOK(ctx, http.DefaultClient, "http://"+promoterAddr+"/healthz", nil))
	return &promoter{proc: proc}
}

// calls counts the agent's calls, from the promoter's own metrics.
func (p *promoter) calls(t *testing.T) int {
	t.Helper()
	resp, err := http.Get("http://" + promoterAddr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	var n float64
	if f := families["slipway_promoter_requests_total"]; f != nil {
		for _, m := range f.GetMetric() {
			n += m.GetCounter().GetValue()
		}
	}
	return int(n)
}
