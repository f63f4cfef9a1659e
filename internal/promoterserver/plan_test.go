package promoterserver

import (
	"bytes"
	"context"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/plan"
	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
)

var update = flag.Bool("update", false, "rewrite the plan's golden outputs under testdata")

// planConfig is the example configuration with staging closed from
// Wednesday 10:00 to Friday 09:00 (London), so that a plan on Wednesday
// noon has a freeze to show beside the soak into production.
func planConfig(t testing.TB, url string) string {
	y := configYAML(t, url, "")
	out := strings.Replace(y, "freezes:\n  production:\n", `freezes:
  staging:
    timezone: Europe/London
    weekly:
      - from: "Wed 10:00"
        to: "Fri 09:00"
  production:
`, 1)
	require.NotEqual(t, y, out)
	return out
}

func file(tag string, auto, promote bool) string {
	return "image_tag: " + tag + "\nautomatic_deploys_enabled: " + boolText(auto) + "\npromote_deployment: " + boolText(promote) + "\n"
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// at commits files at time when (author and committer), as another writer would.
func at(t *testing.T, g *gitrepo.Server, when time.Time, msg string, files map[string]string) {
	t.Setenv("GIT_COMMITTER_DATE", when.Format(time.RFC3339))
	t.Setenv("GIT_AUTHOR_DATE", when.Format(time.RFC3339))
	g.Commit(msg, files)
}

// everyState is a charts repo where, on Wednesday 2026-11-25 at noon, each
// app shows one thing the plan can say (see the golden outputs).
func everyState(t *testing.T) map[string]string {
	const sha = "4f2c1d0e9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e"
	seed := map[string]string{holdsPath: "holds: []\n"}
	set := func(app string, tags ...string) {
		for i, env := range []string{"integration", "staging", "production"} {
			if i < len(tags) && tags[i] != "" {
				seed[tagPath(env, app)] = file(tags[i], true, true)
			}
		}
	}
	set("promote-app", "v43", "v42", "v42")
	set("soak-app", "v43", "v42", "v42")
	set("held-app", "v43", "v43", "v42")
	set("late-app", "v43", "v43", "v42")
	set("rolled-app", "v42", "v41", "v41")
	set("frozen-app", "v44", "v43", "v43")
	set("same-app", "v10", "v10", "v10")
	set("newer-app", "v9", "v9", "v10")
	set("manual-app", "v50", "v20", "v20")
	set("new-app", "v1", "v1")
	set("expired-app", "v5", "v5", "v4")
	set("hotfix-app", "v7", "v7", "v6")
	seed[tagPath("staging", "hotfix-app")] = file("v7", true, false)
	seed[tagPath("integration", "branch-app")] = file(sha, true, false)
	seed[tagPath("staging", "branch-app")] = file(sha, true, false)
	seed[tagPath("production", "branch-app")] = file("v3", true, true)
	return seed
}

// planFixture serves the every-state repo, its history as in production.
func planFixture(t *testing.T) *fixture {
	day := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, time.UTC) }
	t.Setenv("GIT_COMMITTER_DATE", day(10, 12, 0).Format(time.RFC3339))
	t.Setenv("GIT_AUTHOR_DATE", day(10, 12, 0).Format(time.RFC3339))
	f := newFixture(t, everyState(t), withConfig(t, planConfig(t, "https://example.invalid/charts.git")))
	g := f.git
	// Staging moves on while production's automatic deploys from it are off.
	at(t, g, day(14, 12, 0), "manual-app v21", map[string]string{tagPath("staging", "manual-app"): file("v21", true, true)})
	at(t, g, day(16, 12, 0), "manual-app v30", map[string]string{tagPath("staging", "manual-app"): file("v30", true, true)})
	at(t, g, day(18, 12, 0), "manual-app v50, stop", map[string]string{tagPath("staging", "manual-app"): file("v50", false, true)})
	// v42 reaches production, then production is rolled back to v40.
	at(t, g, day(24, 12, 0), "rolled-app v42", map[string]string{tagPath("staging", "rolled-app"): file("v42", true, true),
		tagPath("production", "rolled-app"): file("v42", true, true)})
	at(t, g, day(25, 9, 0), "Roll back rolled-app image tag to v40 for production\n\nSlipway-App: rolled-app\nSlipway-Env: production\n"+
		"Slipway-Tag: v40\nSlipway-Previous-Tag: v42\nSlipway-Rollback: true\nSlipway-Rollback-From: v42",
		map[string]string{tagPath("production", "rolled-app"): file("v40", true, true)})
	at(t, g, day(25, 10, 0), "Hold production", map[string]string{holdsPath: `holds:
  - environments: [production]
    apps: [held-app]
    reason: INC-1234
    by: jane
    since: 2026-11-25T10:00:00Z
  - environments: ["*"]
    apps: [expired-app]
    reason: load test
    by: ops
    since: 2026-11-25T09:00:00Z
    until: 2026-11-25T11:00:00Z
  - environments: [production]
    apps: [late-app]
    reason: database migration
    by: dba
    since: 2026-11-25T11:00:00Z
    until: 2026-12-01T00:00:00Z
`})
	at(t, g, day(25, 11, 0), "promote-app v43", map[string]string{tagPath("staging", "promote-app"): file("v43", true, true)})
	at(t, g, day(25, 11, 48), "soak-app v43", map[string]string{tagPath("staging", "soak-app"): file("v43", true, true)})
	return f
}

// runPlan runs `promoter plan` against f's repo in format.
func runPlan(t *testing.T, f *fixture, format string, mod func(*PlanSettings)) (string, plan.Result, error) {
	var out bytes.Buffer
	cmd := f.command(t, planConfig(t, f.git.URL()))
	cmd.Stdout = &out
	st := PlanSettings{Command: cmd, Output: format, Drift: plan.DefaultDrift}
	if mod != nil {
		mod(&st)
	}
	res, err := Plan(context.Background(), st)
	head := f.git.Head()
	return strings.NewReplacer(head, "HEAD", head[:7], "HEAD").Replace(out.String()), res, err
}

// The plan of a repo with every state, in each format, byte for byte
// (go test ./internal/promoterserver -run TestPlanGolden -update rewrites
// them after a deliberate change).
func TestPlanGolden(t *testing.T) {
	f := planFixture(t)
	for _, format := range plan.Formats {
		t.Run(format, func(t *testing.T) {
			out, res, err := runPlan(t, f, format, nil)
			require.NoError(t, err)
			path := filepath.Join("testdata", "plan."+format)
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(out), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "no golden: go test ./internal/promoterserver -run TestPlanGolden -update")
			assert.Equal(t, string(want), out)
			assert.Equal(t, outcome.DryRun, res.Report().Outcome, "a plan writes nothing")
		})
	}
	t.Run("every state is there", func(t *testing.T) {
		_, res, err := runPlan(t, f, "json", nil)
		require.NoError(t, err)
		seen := map[string]bool{}
		for _, a := range res.Apps {
			for _, s := range a.Steps {
				seen[s.Outcome] = true
			}
		}
		for _, o := range []outcome.Outcome{outcome.Promoted, outcome.Soaking, outcome.Held, outcome.HeldPastDeadline, outcome.FreezeWindow,
			outcome.RolledBackFrom, outcome.AlreadyThere, outcome.NewerPresent, outcome.NotARelease, outcome.AutoDeployDisabled,
			outcome.NotPromotable, outcome.NoTagFile} {
			assert.True(t, seen[o.String()], "no step ends in %s", o)
		}
		assert.NotEmpty(t, res.Drift)
	})
	t.Run("one app, drift fails", func(t *testing.T) {
		out, res, err := runPlan(t, f, "text", func(st *PlanSettings) { st.Apps, st.FailOnDrift = "manual-app", true })
		assert.Equal(t, exitcode.Failed, exitcode.Code(err), "%v", err)
		assert.ErrorContains(t, err, "drift: 1 environments behind the one before them for more than 7d")
		require.Len(t, res.Apps, 1)
		assert.Contains(t, out, "production runs v20, 3 releases behind staging (v50) for 11d", "printed before it fails")
		_, _, err = runPlan(t, f, "text", func(st *PlanSettings) { st.Apps, st.FailOnDrift, st.Drift = "manual-app", true, 12*24*time.Hour })
		assert.NoError(t, err, "11 days is not drift past a 12-day threshold")
	})
	t.Run("bad input", func(t *testing.T) {
		for _, mod := range []func(*PlanSettings){
			func(st *PlanSettings) { st.Output = "yaml" },
			func(st *PlanSettings) { st.Apps = "no-such-app" },
			func(st *PlanSettings) { st.Apps = "../x" },
			func(st *PlanSettings) { st.HistoryDepth = -1 },
		} {
			_, _, err := runPlan(t, f, "text", mod)
			assert.Equal(t, exitcode.Invalid, exitcode.Code(err), "%v", err)
		}
	})
}

// The plan decides as the promoter does: for every step of every app, the
// promoter's own reply to the post-sync that would ask for it has the
// outcome's phase and the plan's reason (asked from the last step back,
// so that a promotion made by an earlier answer changes no later one).
func TestPlanDecidesAsThePromoter(t *testing.T) {
	f := planFixture(t)
	_, res, err := runPlan(t, f, "json", nil)
	require.NoError(t, err)
	asked := 0
	for _, a := range res.Apps {
		for i := len(a.Steps) - 1; i >= 0; i-- {
			s := a.Steps[i]
			if s.Outcome == "" {
				continue // nothing the promoter could be asked
			}
			want, err := outcome.Parse(s.Outcome)
			require.NoError(t, err)
			r := f.execute(t, promoteArgs(t, "wf-"+a.Name, promoteStep(a.Name, s.From, s.Tag)))
			asked++
			assert.Equal(t, wfv1.NodePhase(want.Phase()), r.Node.Phase, "%s %s -> %s", a.Name, s.From, s.To)
			assert.Equal(t, s.Reason, r.Node.Message, "%s %s -> %s", a.Name, s.From, s.To)
			if !want.Waiting() {
				assert.Equal(t, boolText(s.WouldPromote), outputsOf(r)["promoted"], "%s %s -> %s", a.Name, s.From, s.To)
			}
		}
	}
	assert.Equal(t, 2*len(res.Apps), asked, "every step was asked")
}

// --output-file gets the plan instead of stdout, byte for byte as stdout
// would, and only once the plan is made: with drift (exit 1) too, never
// when the charts repo could not be read (exit 1 too: a workflow tells the
// two apart by the file). A file a run before left is gone either way; a
// folder that takes no file is exit 2 before the repo is read.
func TestPlanOutputFile(t *testing.T) {
	f := planFixture(t)
	want, _, err := runPlan(t, f, "markdown", nil)
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.md")
	run := func(url string, mod func(*PlanSettings)) (stdout string, err error) {
		var out bytes.Buffer
		cmd := f.command(t, planConfig(t, url))
		cmd.Stdout = &out
		st := PlanSettings{Command: cmd, Output: "markdown", Drift: plan.DefaultDrift, OutputFile: path}
		if mod != nil {
			mod(&st)
		}
		_, err = Plan(context.Background(), st)
		return out.String(), err
	}
	read := func() string {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		return strings.ReplaceAll(string(b), f.git.Head()[:7], "HEAD")
	}
	entries := func() []string {
		es, err := os.ReadDir(dir)
		require.NoError(t, err)
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}

	out, err := run(f.git.URL(), nil)
	require.NoError(t, err)
	assert.Empty(t, out, "nothing on stdout")
	assert.Equal(t, want, read())

	out, err = run(f.git.URL(), func(st *PlanSettings) { st.FailOnDrift = true })
	assert.Equal(t, exitcode.Failed, exitcode.Code(err), "%v", err)
	assert.ErrorContains(t, err, "drift: ")
	assert.Empty(t, out)
	assert.Equal(t, want, read(), "drift: the plan is written before the exit 1")

	down := closedPort(t)
	_, err = run("http://"+down+"/charts.git", func(st *PlanSettings) { st.FailOnDrift = true })
	assert.Equal(t, exitcode.Failed, exitcode.Code(err), "%v", err)
	assert.ErrorContains(t, err, "read the charts repo")
	assert.Empty(t, entries(), "the repo could not be read: no file, not even the last run's")

	_, err = run(f.git.URL(), func(st *PlanSettings) { st.OutputFile = filepath.Join(dir, "no-such-folder", "plan.md") })
	assert.Equal(t, exitcode.Invalid, exitcode.Code(err), "%v", err)
	assert.ErrorContains(t, err, "--output-file: ")
	assert.Empty(t, entries(), "no probe left behind")
}

// closedPort is a loopback address where nothing listens: a git host that
// is down.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}
