package promoterserver

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/promoter"
	"github.com/slipway-deploy/slipway/internal/tagfile"
)

// Every way a promotion ends, and what the agent and Prometheus see of it:
// the node phase, a requeue only while waiting, the outputs otherwise
// (promoted=true only for a promotion), and the two metric labels. The
// reason labels are the ones the promoter has always exported.
func TestEveryOutcomeToReplyAndMetrics(t *testing.T) {
	type facts struct {
		phase                     wfv1.NodePhase
		promoted                  string // "" when the reply has no outputs
		outcomeLabel, reasonLabel string // "" when not counted
	}
	want := map[outcome.Outcome]facts{
		outcome.Promoted:           {wfv1.NodeSucceeded, "true", "promoted", "promoted"},
		outcome.LastEnvironment:    {wfv1.NodeSucceeded, "false", "not_promoted", "last_environment"},
		outcome.NotARelease:        {wfv1.NodeSucceeded, "false", "not_promoted", "not_release"},
		outcome.Stale:              {wfv1.NodeSucceeded, "false", "not_promoted", "stale"},
		outcome.AutoDeployDisabled: {wfv1.NodeSucceeded, "false", "not_promoted", "automatic_deploys_disabled"},
		outcome.NotPromotable:      {wfv1.NodeSucceeded, "false", "not_promoted", "promote_deployment_false"},
		outcome.NoTagFile:          {wfv1.NodeSucceeded, "false", "not_promoted", "no_tag_file"},
		outcome.AlreadyThere:       {wfv1.NodeSucceeded, "false", "not_promoted", "already_there"},
		outcome.NewerPresent:       {wfv1.NodeSucceeded, "false", "not_promoted", "newer_release_present"},
		outcome.FrozenPastDeadline: {wfv1.NodeSucceeded, "false", "not_promoted", "frozen"},
		outcome.HeldPastDeadline:   {wfv1.NodeSucceeded, "false", "not_promoted", "held_past_deadline"},
		outcome.RolledBackFrom:     {wfv1.NodeSucceeded, "false", "not_promoted", "rolled_back_from"},
		outcome.Held:               {wfv1.NodeRunning, "", "waiting", "held"},
		outcome.FreezeWindow:       {wfv1.NodeRunning, "", "waiting", "freeze_window"},
		outcome.Soaking:            {wfv1.NodeRunning, "", "waiting", "soaking"},
		outcome.Failed:             {wfv1.NodeFailed, "false", "failed", "error"},
		outcome.InProgress:         {wfv1.NodeRunning, "", "", ""}, // the reply budget's, never counted
	}
	require.ElementsMatch(t, append(append([]outcome.Outcome{}, promoter.Outcomes...), outcome.InProgress), keys(want))
	layout, err := chartsrepo.NewLayout("", "", tagfile.DefaultKeys)
	require.NoError(t, err)
	staging, err := layout.ParseEnv("staging")
	require.NoError(t, err)
	for o, w := range want {
		t.Run(o.String(), func(t *testing.T) {
			res := promoter.Result{Outcome: o, Target: staging, Reason: "why", Commit: "c0ffee"}
			if o.Waiting() {
				res.Requeue = time.Minute
			}
			r := reply(res)
			assert.Equal(t, w.phase, r.Node.Phase)
			assert.Equal(t, "why", r.Node.Message)
			if w.promoted == "" {
				require.NotNil(t, r.Requeue, "Running always comes with a requeue")
				assert.Equal(t, time.Minute, r.Requeue.Duration)
				assert.Nil(t, r.Node.Outputs)
			} else {
				assert.Nil(t, r.Requeue, "a terminal phase never comes with a requeue")
				assert.Equal(t, map[string]string{"promoted": w.promoted, "target-env": "staging", "commit": "c0ffee", "reason": "why",
					"outcome": o.String()}, outputsOf(r))
				require.NotNil(t, r.Node.Outputs.ExitCode, "the exit code a template's retryStrategy reads")
				assert.Equal(t, strconv.Itoa(o.ExitCode()), *r.Node.Outputs.ExitCode)
			}
			if w.reasonLabel == "" {
				return
			}
			m := newMetrics()
			m.observe(o, time.Millisecond)
			rec := httptest.NewRecorder()
			m.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			series := regexp.MustCompile(`(?m)^slipway_promoter_promotions_total\{.*$`).FindAllString(rec.Body.String(), -1)
			assert.Equal(t, []string{`slipway_promoter_promotions_total{outcome="` + w.outcomeLabel + `",reason="` + w.reasonLabel + `"} 1`}, series)
		})
	}
}

func keys[K comparable, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// The README documents the metric's labels: one row per outcome a
// promotion ends in, its reason label and its outcome label, exactly as the
// promoter exports them.
func TestREADMEListsTheMetricLabels(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, block, ok := strings.Cut(string(b), "<!-- promoter metric labels: checked by internal/promoterserver TestREADMEListsTheMetricLabels -->\n")
	require.True(t, ok, "the README's marker is missing")
	block, _, _ = strings.Cut(block, "\n\n")
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\| `([a-z_]+)` \\| .+ \\|$")
	documented := map[string]string{}
	for _, line := range strings.Split(block, "\n")[2:] { // after the header and its rule
		m := row.FindStringSubmatch(line)
		require.NotNil(t, m, "not a label row: %q", line)
		documented[m[1]] = m[2]
	}
	exported := map[string]string{}
	for _, o := range promoter.Outcomes {
		exported[o.Label()] = outcomeLabel(o)
	}
	assert.Equal(t, exported, documented)
}
