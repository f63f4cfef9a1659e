package workflows

import (
	"encoding/json"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/slack"
)

// envValue is the value of environment variable name in c's container.
func envValue(t *testing.T, c *wfv1.Template, name string) string {
	t.Helper()
	for _, e := range c.Container.Env {
		if e.Name == name {
			return e.Value
		}
	}
	require.Failf(t, "no such variable", "%s", name)
	return ""
}

// Why the reason is passed base64: the controller substitutes the text it
// puts in notify's template again (common.ProcessArgs substitutes the
// inputs' values before it puts them in place, and the pod's spec is
// substituted once more as the pod is made), so a reason passed as it is
// would be changed, its expressions evaluated (if Argo stops doing so,
// this fails, and base64 can go).
func TestReasonWouldBeSubstitutedWithoutBase64(t *testing.T) {
	m := load(t)
	const reason = "held: INC-1234 {{workflow.name}} {{=1+1}} by jane"
	globals := exitGlobals(t, m, map[string]string{"app": "frontend", "environment": "integration", "image-tag": "v42"}, "Succeeded",
		map[string]string{"smoke-outcome": "passed", "promotion-outcome": "held", "promoted": "false", "target-env": "staging",
			"promotion-reason": reason}, nil)
	step, _ := exitStep(t, m, "post-sync", globals)
	// The exit handler's arguments, the reason passed as it is.
	args := step.Arguments.DeepCopy()
	for i, p := range args.Parameters {
		if p.Name == "reason-base64" {
			args.Parameters[i].Value = wfv1.AnyStringPtr(reason)
		}
	}
	c, err := common.ProcessArgs(tmpl(m, "notify", "notify"), args, globals, common.Parameters{}, false, "apps", nil)
	require.NoError(t, err)
	got := envValue(t, podSubstituted(t, c, globals), "SLIPWAY_REASON")
	assert.Equal(t, "held: INC-1234 slipway-post-sync-x7k2p 2 by jane", got, "{{workflow.name}} and an expression, evaluated")
}

// sync-fail calls the same notify template, with no reason: notify reads
// the empty reason base64 as none, and says the sync failed.
func TestSyncFailTellsNotify(t *testing.T) {
	m := load(t)
	globals := templateParams(t, m, "sync-fail", map[string]string{"app": "frontend", "environment": "production", "image-tag": "v42",
		"argocd-url": "https://argocd.example/applications/frontend", "argo-workflows-url": "https://argo-workflows.example",
		"slack-channel": "#deploys"}, common.Parameters{"workflow.name": "slipway-sync-fail-q4x9z"})
	step := resolveStep(t, tmpl(m, "sync-fail", "sync-fail").Steps[0].Steps[0], globals)
	c, err := common.ProcessArgs(tmpl(m, "notify", "notify"), &step.Arguments, globals, common.Parameters{}, false, "apps", nil)
	require.NoError(t, err)
	out := dryRunNotify(t, podSubstituted(t, c, globals), nil)
	var msg slack.Message
	require.NoError(t, json.Unmarshal(out, &msg), "%s", out)
	assert.Equal(t, ":rotating_light: frontend v42 sync failed in production", msg.Text)
	assert.Equal(t, "#deploys", msg.Channel)
	require.GreaterOrEqual(t, len(msg.Blocks), 3)
	assert.Nil(t, msg.Blocks[1].Text, "no reason")
	assert.Equal(t, "<https://argo-workflows.example/workflows/apps/slipway-sync-fail-q4x9z|Workflow>", msg.Blocks[2].Elements[0].Text)
}
