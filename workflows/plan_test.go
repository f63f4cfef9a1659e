package workflows

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/slack"
)

// planMarkdown is a plan with drift, as `promoter plan --output markdown`
// prints it, whose hold reason (anyone's text, from the charts repo) holds
// Argo's own markup and Slack's.
const planMarkdown = "*Release plan*: `main` at `5c2e91a`, 2026-11-25 12:00 UTC, 13 apps\n\n" +
	"*Holds*\n- production (held-app): INC-1234 {{workflow.name}} {{=sprig.upper('x')}} <!channel> & co by jane since 2026-11-25 10:00 UTC\n\n" +
	"*Drift* (behind the environment before for more than 7d)\n" +
	"- `manual-app` production runs v20, 3 releases behind staging (v50) for 11d\n\n" +
	"18 other steps have nothing to do.\n"

// planExitGlobals are the globals promoter-plan's exit handler runs with,
// as exitGlobals has them for post-sync's.
func planExitGlobals(t *testing.T, m *manifests, set map[string]string, status string, outputs map[string]string, failures []failure) common.Parameters {
	t.Helper()
	return withExit(t, templateParams(t, m, "promoter-plan", set, common.Parameters{"workflow.name": "promoter-plan-1764050400"}),
		status, outputs, failures)
}

// planNotice is what promoter-plan's exit handler has notify post, as the
// controller would run it: the step's `when` and arguments resolved over
// the globals, notify's report template processed with them, the pod's
// spec substituted once more as the controller does as it makes the pod
// (substitutePodParams), the raw artifact written as the file notify
// reads, and the real notify run with --dry-run. Posted is false when the
// step's `when` skips it.
func planNotice(t *testing.T, m *manifests, globals common.Parameters) (msg slack.Message, args map[string]string, posted bool) {
	t.Helper()
	step, args := exitStep(t, m, "promoter-plan", globals)
	require.Contains(t, []string{"true", "false"}, step.When)
	if step.When == "false" {
		return slack.Message{}, args, false
	}
	c, err := common.ProcessArgs(tmpl(m, "notify", "report"), &step.Arguments, globals, common.Parameters{}, false, "apps", nil)
	require.NoError(t, err)
	c = podSubstituted(t, c, globals)
	require.Len(t, c.Inputs.Artifacts, 1)
	art := c.Inputs.Artifacts[0]
	require.NotNil(t, art.Raw)
	out := dryRunNotify(t, c, map[string]string{art.Path: art.Raw.Data})
	if len(out) == 0 {
		return slack.Message{}, args, false // an empty report: nothing to post
	}
	require.NoError(t, json.Unmarshal(out, &msg), "%s", out)
	return msg, args, true
}

// podSubstituted is tmpl as the pod's spec carries it (ARGO_TEMPLATE) once
// the controller substituted it again (workflowpod.go substitutePodParams:
// the globals and the template's inputs, unresolved names left alone).
func podSubstituted(t *testing.T, tmpl *wfv1.Template, globals common.Parameters) *wfv1.Template {
	t.Helper()
	params := globals.DeepCopy()
	for _, p := range tmpl.Inputs.Parameters {
		if p.Value != nil {
			params["inputs.parameters."+p.Name] = p.Value.String()
		}
	}
	out := replaced(t, *tmpl, params)
	return &out
}

// sectionsText is the text of a message's sections after the header, one
// a line.
func sectionsText(msg slack.Message) string {
	var texts []string
	for _, b := range msg.Blocks[1:] {
		if b.Type == "section" && b.Text != nil {
			texts = append(texts, b.Text.Text)
		}
	}
	return strings.Join(texts, "\n")
}

// The exit handler posts the plan when there is drift, and says so when
// the plan did not run (whatever the exit code, or a pod that never ran);
// a plan without drift posts nothing unless post-without-drift.
func TestPlanExitHandlerPostsDriftAndFailures(t *testing.T) {
	m := load(t)
	report := map[string]string{"plan-report": planMarkdown}
	exit := func(code string) []failure {
		return []failure{{DisplayName: "promoter-plan-1764050400", Message: "main: Error (exit code " + code + ")", TemplateName: "plan", Phase: "Failed"}}
	}
	const why = " (exit code 1: the charts repo could not be read; 2: invalid configuration or flags). Its log is in the workflow."
	for _, tc := range []struct {
		name     string
		set      map[string]string
		status   string
		outputs  map[string]string
		failures []failure
		posted   bool
		title    string
		reason   string // the section under the title; "" for none
	}{
		{name: "drift", status: "Failed", outputs: report, failures: exit("1"), posted: true, title: ":warning: Release plan: drift"},
		{name: "no drift", status: "Succeeded", outputs: report},
		{name: "no drift, posted anyway", set: map[string]string{"post-without-drift": "true"}, status: "Succeeded", outputs: report,
			posted: true, title: ":clipboard: Release plan"},
		{name: "the charts repo could not be read", status: "Failed", outputs: map[string]string{"plan-report": ""}, failures: exit("1"),
			posted: true, title: ":x: The release plan did not run to its end (Failed)", reason: "promoter plan: main: Error (exit code 1)" + why},
		{name: "invalid configuration", status: "Failed", outputs: map[string]string{"plan-report": ""}, failures: exit("2"),
			posted: true, title: ":x: The release plan did not run to its end (Failed)", reason: "promoter plan: main: Error (exit code 2)" + why},
		{name: "the pod never ran", status: "Error",
			failures: []failure{{DisplayName: "promoter-plan-1764050400(0)", Message: "ImagePullBackOff", TemplateName: "plan", Phase: "Error"}},
			posted:   true, title: ":x: The release plan did not run to its end (Error)", reason: "promoter plan: ImagePullBackOff" + why},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := map[string]string{"argo-workflows-url": "https://argo-workflows.example", "slack-channel": "#releases"}
			for k, v := range tc.set {
				set[k] = v
			}
			msg, args, posted := planNotice(t, m, planExitGlobals(t, m, set, tc.status, tc.outputs, tc.failures))
			require.Equal(t, tc.posted, posted, "%v", args)
			if !posted {
				return
			}
			assert.Equal(t, tc.title, msg.Blocks[0].Text.Text)
			assert.Equal(t, "#releases", msg.Channel)
			text := sectionsText(msg)
			assert.Equal(t, strconv.FormatBool(tc.status != "Succeeded"), args["post-empty"], "whatever went wrong is posted")
			if tc.reason != "" {
				assert.Equal(t, tc.reason, msg.Blocks[1].Text.Text)
			}
			if tc.outputs["plan-report"] == "" {
				assert.Contains(t, text, "_The report is empty._", "a plan that did not run is posted without a report")
				return
			}
			// The plan arrives as the plan step wrote it: Argo's markup not
			// substituted, Slack's escaped.
			assert.Equal(t, slack.Escape(strings.TrimSpace(planMarkdown)), text)
			assert.Contains(t, text, "INC-1234 {{workflow.name}} {{=sprig.upper('x')}} &lt;!channel&gt; &amp; co by jane")
			foot := msg.Blocks[len(msg.Blocks)-1]
			assert.Equal(t, "<https://argo-workflows.example/workflows/apps/promoter-plan-1764050400|Workflow>", foot.Elements[0].Text)
		})
	}
}

// Why the report is passed base64: the controller substitutes a pod's spec
// once more as it makes the pod, and text passed as it is would be changed
// there (if Argo stops doing so, this fails, and base64 can go).
func TestPlanTextWouldBeSubstitutedWithoutBase64(t *testing.T) {
	m := load(t)
	globals := planExitGlobals(t, m, nil, "Failed", map[string]string{"plan-report": planMarkdown}, nil)
	plain := tmpl(m, "notify", "report").DeepCopy()
	plain.Inputs.Artifacts[0].Raw.Data = planMarkdown
	got := podSubstituted(t, plain, globals).Inputs.Artifacts[0].Raw.Data
	assert.NotEqual(t, planMarkdown, got)
	assert.Contains(t, got, "INC-1234 promoter-plan-1764050400 X <!channel>", "{{workflow.name}} and an expression, evaluated")
}
