package workflows

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/util/expr/env"
	"github.com/argoproj/argo-workflows/v3/util/template"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
	"github.com/expr-lang/expr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/slack"
)

// Argo does not validate {{=...}} expressions, so these tests evaluate
// post-sync's with Argo's own code, each the way the controller does at
// its moment: a template's inputs and `when`s as it starts
// (common.ProcessArgs), a step's `when` and arguments when its step group
// starts (template.Replace over the step, unresolved names left alone), a
// steps template's outputs when it succeeded (expr over its scope).

// workflowParams are post-sync's parameters as a hook passes them, over
// the template's defaults, as Argo's global parameters.
func workflowParams(t *testing.T, m *manifests, set map[string]string) common.Parameters {
	t.Helper()
	// Besides the parameters, some of the controller's other globals: the
	// parameters as JSON and the hook's annotations share prefixes with
	// what the expressions read.
	return templateParams(t, m, "post-sync", set, common.Parameters{"workflow.name": "slipway-post-sync-x7k2p",
		"workflow.annotations.argocd.argoproj.io/hook": "PostSync", "workflow.annotations.argocd.argoproj.io/hook-delete-policy": "HookSucceeded"})
}

// templateParams are WorkflowTemplate wt's parameters, set over its
// defaults, as Argo's global parameters, with others.
func templateParams(t *testing.T, m *manifests, wt string, set map[string]string, others common.Parameters) common.Parameters {
	t.Helper()
	p := common.Parameters{"workflow.namespace": "apps", "workflow.uid": "6f1c2b9e"}
	maps.Copy(p, others)
	args := m.templates[wt].Spec.Arguments.DeepCopy()
	for k, v := range set {
		i := slices.IndexFunc(args.Parameters, func(p wfv1.Parameter) bool { return p.Name == k })
		require.GreaterOrEqual(t, i, 0, "%s takes no parameter %s", wt, k)
		args.Parameters[i].Value = wfv1.AnyStringPtr(v)
	}
	for _, a := range args.Parameters {
		if a.Value != nil {
			p["workflow.parameters."+a.Name] = a.Value.String()
		}
	}
	b, err := json.Marshal(args.Parameters)
	require.NoError(t, err)
	p["workflow.parameters"], p["workflow.parameters.json"] = string(b), string(b)
	return p
}

// resolveStep resolves a step's references as the controller does when its
// step group starts (steps.go resolveReferences).
func resolveStep(t *testing.T, step wfv1.WorkflowStep, params common.Parameters) wfv1.WorkflowStep {
	t.Helper()
	return replaced(t, step, params)
}

// replaced is v with params substituted in its JSON as the controller
// substitutes (template.Replace, unresolved names left alone).
func replaced[T any](t *testing.T, v T, params common.Parameters) T {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	s, err := template.Replace(string(b), params, true)
	require.NoError(t, err)
	var out T
	require.NoError(t, json.Unmarshal([]byte(s), &out))
	return out
}

// The environment a promotion would go to, and whether it waits for an
// approval, as post-sync starts.
func TestApprovalIsAskedForTheTargetEnvironment(t *testing.T) {
	m := load(t)
	for _, tc := range []struct {
		name         string
		set          map[string]string
		wantNext     string
		wantApproval string
	}{
		{"no approval asked", map[string]string{"environment": "staging"}, "production", "false"},
		{"promotion into production needs one", map[string]string{"environment": "staging", "approval-environments": "production"}, "production", "true"},
		{"a list with spaces", map[string]string{"environment": "staging", "approval-environments": "staging, production"}, "production", "true"},
		{"promotion into staging needs none", map[string]string{"environment": "integration", "approval-environments": "production"}, "staging", "false"},
		{"the last environment promotes nowhere", map[string]string{"environment": "production", "approval-environments": "production"}, "", "false"},
		{"another chain", map[string]string{"environment": "dev", "environments": "dev, prod", "approval-environments": "prod"}, "prod", "true"},
		{"an environment not in the chain", map[string]string{"environment": "test", "approval-environments": "production"}, "", "false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			globals := workflowParams(t, m, tc.set)
			args := m.templates["post-sync"].Spec.Arguments
			processed, err := common.ProcessArgs(tmpl(m, "post-sync", "post-sync"), &args, globals, common.Parameters{}, false, "apps", nil)
			require.NoError(t, err)
			assert.Equal(t, tc.wantNext, processed.Inputs.GetParameterByName("next-environment").Value.String())
			approve := resolveStep(t, processed.Steps[1].Steps[0], globals)
			assert.Equal(t, "approve", approve.Name)
			assert.Equal(t, tc.wantApproval, approve.When)
			assert.Equal(t, tc.wantNext, approve.Arguments.GetParameterByName("target-env").Value.String())
			// The promote step's `when` waits for the approve step's result.
			assert.True(t, strings.HasPrefix(processed.Steps[2].Steps[0].When, "{{="), processed.Steps[2].Steps[0].When)
		})
	}
}

// The promote step runs when no approval was asked for, or a person resumed
// the approval before its timeout; not when the approval timed out (a
// suspend step that times out ends Succeeded too, after the timeout).
func TestPromoteRunsOnlyWhenApprovedInTime(t *testing.T) {
	m := load(t)
	started := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		status  string
		after   time.Duration
		timeout string
		want    string
	}{
		{"no approval asked", "Skipped", 0, "24h", "true"},
		{"resumed after an hour", "Succeeded", time.Hour, "24h", "true"},
		{"resumed a second before the timeout", "Succeeded", 24*time.Hour - time.Second, "24h", "true"},
		{"timed out", "Succeeded", 24 * time.Hour, "24h", "false"},
		{"timed out, seen late", "Succeeded", 24*time.Hour + 3*time.Second, "24h", "false"},
		{"a short timeout", "Succeeded", 31 * time.Minute, "30m", "false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scope := workflowParams(t, m, map[string]string{"approval-timeout": tc.timeout})
			scope["steps.smoke.status"] = "Succeeded"
			scope["steps.approve.status"] = tc.status
			if tc.status != "Skipped" {
				scope["steps.approve.startedAt"] = started.Format(time.RFC3339)
				scope["steps.approve.finishedAt"] = started.Add(tc.after).Format(time.RFC3339)
			}
			promote := resolveStep(t, tmpl(m, "post-sync", "post-sync").Steps[2].Steps[0], scope)
			assert.Equal(t, "promote", promote.Name)
			assert.Equal(t, tc.want, promote.When)
		})
	}
}

// postSyncOutputs evaluates post-sync's outputs over the steps' scope, as
// the controller does when the steps succeeded (scope.resolveParameter).
func postSyncOutputs(t *testing.T, m *manifests, scope map[string]string) map[string]string {
	t.Helper()
	vars := map[string]any{}
	for k, v := range scope {
		vars[k] = v
	}
	out := map[string]string{}
	for _, p := range tmpl(m, "post-sync", "post-sync").Outputs.Parameters {
		e := env.GetFuncMap(vars)
		program, err := expr.Compile(p.ValueFrom.Expression, expr.Env(e))
		require.NoError(t, err, p.Name)
		v, err := expr.Run(program, e)
		require.NoError(t, err, p.Name)
		require.Equal(t, p.Name, p.GlobalName, "an exit handler reads it as workflow.outputs.parameters.%s", p.Name)
		out[p.Name] = v.(string)
	}
	return out
}

func TestPostSyncOutputsSayHowThePromotionEnded(t *testing.T) {
	m := load(t)
	promoted := map[string]string{
		"inputs.parameters.next-environment":          "staging",
		"steps.smoke.status":                          "Succeeded",
		"steps.approve.status":                        "Skipped",
		"steps.promote.status":                        "Succeeded",
		"steps.promote.outputs.parameters.promoted":   "true",
		"steps.promote.outputs.parameters.target-env": "staging",
		"steps.promote.outputs.parameters.reason":     "promoted",
		"steps.promote.outputs.parameters.outcome":    "promoted",
		"steps.promote.outputs.parameters.commit":     "e9ad403",
	}
	assert.Equal(t, map[string]string{"promotion-outcome": "promoted", "promoted": "true", "target-env": "staging",
		"promotion-reason": "promoted"}, postSyncOutputs(t, m, promoted))

	timedOut := map[string]string{
		"inputs.parameters.next-environment": "production",
		"steps.smoke.status":                 "Succeeded",
		"steps.approve.status":               "Succeeded",
		"steps.promote.status":               "Skipped",
	}
	assert.Equal(t, map[string]string{"promotion-outcome": "", "promoted": "false", "target-env": "production",
		"promotion-reason": "approval timed out"}, postSyncOutputs(t, m, timedOut))
}

// failure is one entry of {{workflow.failures}}, as the controller lists a
// failed node (operator.go failedNodeStatus).
type failure struct {
	DisplayName  string `json:"displayName"`
	Message      string `json:"message"`
	TemplateName string `json:"templateName"`
	Phase        string `json:"phase"`
	PodName      string `json:"podName"`
	FinishedAt   string `json:"finishedAt"`
}

// exitGlobals are the global parameters post-sync's exit handler runs with:
// the workflow's status, its global outputs and its failed nodes, JSON
// quoted as the controller quotes them.
func exitGlobals(t *testing.T, m *manifests, set map[string]string, status string, outputs map[string]string, failures []failure) common.Parameters {
	t.Helper()
	return withExit(t, workflowParams(t, m, set), status, outputs, failures)
}

// withExit adds to a workflow's globals what an exit handler has besides:
// its status, its global outputs and its failed nodes.
func withExit(t *testing.T, p common.Parameters, status string, outputs map[string]string, failures []failure) common.Parameters {
	t.Helper()
	p["workflow.status"] = status
	b, err := json.Marshal(failures)
	require.NoError(t, err)
	p["workflow.failures"] = strconv.Quote(string(b))
	for k, v := range outputs {
		p["workflow.outputs.parameters."+k] = v
	}
	return p
}

// exitNotice runs the real notify, with --dry-run, as post-sync's exit
// handler would: its step's arguments resolved over globals, notify's
// template processed with them, the pod's spec substituted once more as
// the controller does as it makes the pod (podSubstituted); it returns the
// message notify composed, and the step's arguments with the reason
// decoded (as "reason").
func exitNotice(t *testing.T, m *manifests, globals common.Parameters) (msg slack.Message, args map[string]string) {
	t.Helper()
	step, args := exitStep(t, m, "post-sync", globals)
	c, err := common.ProcessArgs(tmpl(m, "notify", "notify"), &step.Arguments, globals, common.Parameters{}, false, "apps", nil)
	require.NoError(t, err)
	out := dryRunNotify(t, podSubstituted(t, c, globals), nil)
	require.NoError(t, json.Unmarshal(out, &msg), "%s", out)
	reason, err := base64.StdEncoding.DecodeString(args["reason-base64"])
	require.NoError(t, err, "the reason is passed base64: %q", args["reason-base64"])
	args["reason"] = string(reason)
	return msg, args
}

// exitStep is the step of WorkflowTemplate wt's exit handler, resolved over
// globals, and its arguments' values, each resolved.
func exitStep(t *testing.T, m *manifests, wt string, globals common.Parameters) (wfv1.WorkflowStep, map[string]string) {
	t.Helper()
	step := resolveStep(t, tmpl(m, wt, "exit").Steps[0].Steps[0], globals)
	args := map[string]string{}
	for _, p := range step.Arguments.Parameters {
		args[p.Name] = p.Value.String()
		assert.NotContains(t, p.Value.String(), "{{", "%s is resolved", p.Name)
	}
	return step, args
}

// dryRunNotify runs the real notify with --dry-run as the processed
// template c runs it (its arguments and environment), a webhook URL in the
// file its --webhook-url-file names, and each file of files (content by
// the path the template gives a flag) written where notify can read it;
// it returns what notify printed.
func dryRunNotify(t *testing.T, c *wfv1.Template, files map[string]string) []byte {
	t.Helper()
	binaryContracts(t) // builds the binaries
	dir := t.TempDir()
	webhook := filepath.Join(dir, "url")
	require.NoError(t, os.WriteFile(webhook, []byte("https://hooks.slack.invalid/services/T0/B0/abcdefghijklmnopqrstuvwx\n"), 0o600))
	argv := []string{"--dry-run", "--log-format", "text"}
	for _, a := range c.Container.Args {
		flag, value, _ := strings.Cut(a, "=")
		if content, ok := files[value]; ok {
			local := filepath.Join(dir, filepath.Base(value))
			require.NoError(t, os.WriteFile(local, []byte(content), 0o644))
			a = flag + "=" + local
		}
		if flag == "--webhook-url-file" {
			a = flag + "=" + webhook
		}
		argv = append(argv, a)
	}
	cmd := exec.Command(filepath.Join(binDir, "notify"), argv...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for _, e := range c.Container.Env {
		assert.NotContains(t, e.Value, "{{", "%s is resolved", e.Name)
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	out, err := cmd.Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, "notify refused what the exit handler passed it: %s", stderr)
	return out
}

// Whatever happened, the exit handler gives notify what it needs to say
// it: a typed outcome, promoted, the target and the reason when the steps
// succeeded; the step that failed, and why, when they did not.
func TestExitHandlerTellsNotifyWhatHappened(t *testing.T) {
	m := load(t)
	smokeRetries := []failure{
		{DisplayName: "smoke(0)", Message: "Error (exit code 1)", TemplateName: "smoke-test", Phase: "Failed"},
		{DisplayName: "smoke(1)", Message: "Error (exit code 1)", TemplateName: "smoke-test", Phase: "Failed"},
		{DisplayName: "smoke", Message: "Error (exit code 1)", TemplateName: "smoke-test", Phase: "Failed"},
		{DisplayName: "slipway-post-sync-x7k2p", Message: "child 'x' failed", TemplateName: "post-sync", Phase: "Failed"},
	}
	promoted := map[string]string{"smoke-outcome": "passed", "smoke-summary": "9 checks passed",
		"promotion-outcome": "promoted", "promoted": "true", "target-env": "staging", "promotion-reason": "promoted"}
	for _, tc := range []struct {
		name     string
		set      map[string]string
		status   string
		outputs  map[string]string
		failures []failure
		want     string
		wantArgs map[string]string
		// The reason's section, when the reason is anyone's text.
		wantReason string
	}{
		{name: "promoted", set: map[string]string{"environment": "integration"}, status: "Succeeded", outputs: promoted,
			want:     ":rocket: frontend v42 deployed to integration and promoted to staging",
			wantArgs: map[string]string{"outcome": "promoted", "promoted": "true", "target-env": "staging", "reason": "promoted", "failed-step": ""}},
		{name: "not promoted: stale", set: map[string]string{"environment": "integration"}, status: "Succeeded",
			outputs: map[string]string{"smoke-outcome": "passed", "promotion-outcome": "stale", "promoted": "false",
				"target-env": "staging", "promotion-reason": "stale: integration now runs v43"},
			want: ":large_yellow_circle: frontend v42 deployed to integration, not promoted to staging: integration runs another tag now"},
		{name: "the last environment", set: map[string]string{"environment": "production"}, status: "Succeeded",
			outputs: map[string]string{"smoke-outcome": "passed", "promotion-outcome": "last-environment", "promoted": "false",
				"target-env": "", "promotion-reason": "last environment"},
			want: ":white_check_mark: frontend v42 deployed to production (the last environment)"},
		{name: "approval timed out", set: map[string]string{"environment": "staging", "approval-environments": "production"}, status: "Succeeded",
			outputs: map[string]string{"smoke-outcome": "passed", "promotion-outcome": "", "promoted": "false",
				"target-env": "production", "promotion-reason": "approval timed out"},
			want:     ":large_yellow_circle: frontend v42 deployed to staging, not promoted to production: approval timed out",
			wantArgs: map[string]string{"outcome": "", "promoted": "false", "target-env": "production", "reason": "approval timed out", "failed-step": ""}},
		{name: "smoke checks failed", set: map[string]string{"environment": "integration"}, status: "Failed",
			outputs: map[string]string{"smoke-outcome": "checks-failed", "smoke-summary": "2 of 9 checks failed: GET /healthcheck/ready"}, failures: smokeRetries,
			want:     ":x: frontend v42 failed in integration at smoke-test: smoke checks failed",
			wantArgs: map[string]string{"outcome": "checks-failed", "promoted": "", "target-env": "", "reason": "2 of 9 checks failed: GET /healthcheck/ready", "failed-step": "smoke-test"}},
		{name: "the promotion failed", set: map[string]string{"environment": "integration"}, status: "Failed",
			outputs: map[string]string{"smoke-outcome": "passed", "smoke-summary": "9 checks passed"},
			failures: []failure{{DisplayName: "promote(2)", Message: "push refs/heads/main: connection refused", TemplateName: "promote", Phase: "Failed"},
				{DisplayName: "slipway-post-sync-x7k2p", Message: "child 'x' failed", TemplateName: "post-sync", Phase: "Failed"}},
			want:     ":x: frontend v42 failed in integration at promote",
			wantArgs: map[string]string{"outcome": "", "promoted": "", "target-env": "", "reason": "push refs/heads/main: connection refused", "failed-step": "promote"}},
		{name: "the smoke pod never ran", set: map[string]string{"environment": "integration"}, status: "Error",
			failures: []failure{{DisplayName: "smoke", Message: "ImagePullBackOff", TemplateName: "smoke-test", Phase: "Error"}},
			want:     ":x: frontend v42 failed in integration at smoke-test (workflow error)",
			wantArgs: map[string]string{"outcome": "", "promoted": "", "target-env": "", "reason": "ImagePullBackOff", "failed-step": "smoke-test"}},
		// Outside text, holding Argo's markup, arrives as written: not
		// substituted, not evaluated, by the controller.
		{name: "held, a hold's reason with Argo's markup", set: map[string]string{"environment": "integration"}, status: "Succeeded",
			outputs: map[string]string{"smoke-outcome": "passed", "promotion-outcome": "held", "promoted": "false", "target-env": "staging",
				"promotion-reason": "held: INC-1234 {{workflow.name}} {{=1+1}} & <!channel> by jane"},
			want:       ":large_yellow_circle: frontend v42 deployed to integration, not promoted to staging: a hold covers staging now",
			wantArgs:   map[string]string{"reason": "held: INC-1234 {{workflow.name}} {{=1+1}} & <!channel> by jane"},
			wantReason: "*Reason:* held: INC-1234 {{workflow.name}} {{=1+1}} &amp; &lt;!channel&gt; by jane"},
		{name: "smoke checks failed, a check's name with Argo's markup", set: map[string]string{"environment": "integration"}, status: "Failed",
			outputs:    map[string]string{"smoke-outcome": "checks-failed", "smoke-summary": "1 of 9 checks failed: {{workflow.parameters.slipway-image}} {{=1+1}}"},
			failures:   smokeRetries,
			want:       ":x: frontend v42 failed in integration at smoke-test: smoke checks failed",
			wantArgs:   map[string]string{"reason": "1 of 9 checks failed: {{workflow.parameters.slipway-image}} {{=1+1}}", "failed-step": "smoke-test"},
			wantReason: "*Reason:* 1 of 9 checks failed: {{workflow.parameters.slipway-image}} {{=1+1}}"},
		{name: "the promotion failed, an error with Argo's markup", set: map[string]string{"environment": "integration"}, status: "Failed",
			outputs:    map[string]string{"smoke-outcome": "passed", "smoke-summary": "9 checks passed"},
			failures:   []failure{{DisplayName: "promote(2)", Message: "hold file: reason {{workflow.name}} {{=1+1}}: bad", TemplateName: "promote", Phase: "Failed"}},
			want:       ":x: frontend v42 failed in integration at promote",
			wantArgs:   map[string]string{"reason": "hold file: reason {{workflow.name}} {{=1+1}}: bad", "failed-step": "promote"},
			wantReason: "*Reason:* hold file: reason {{workflow.name}} {{=1+1}}: bad"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := map[string]string{"app": "frontend", "image-tag": "v42"}
			for k, v := range tc.set {
				set[k] = v
			}
			msg, args := exitNotice(t, m, exitGlobals(t, m, set, tc.status, tc.outputs, tc.failures))
			assert.Equal(t, tc.want, msg.Text)
			assert.Equal(t, tc.status, args["status"])
			for k, v := range tc.wantArgs {
				assert.Equal(t, v, args[k], k)
			}
			if tc.wantReason != "" {
				require.NotNil(t, msg.Blocks[1].Text)
				assert.Equal(t, tc.wantReason, msg.Blocks[1].Text.Text)
			}
		})
	}
}
