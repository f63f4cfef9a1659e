package promoterserver

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/bumptag"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/gitauth"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
)

// Release control (docs/architecture.md rules 12 and 13) against the real
// git server: holds stop the promoter until lifted, rollbacks stay rolled
// back, and the plan decides as the promoter does.

const holdsPath = "charts/app-config/holds.yaml"

// configYAML is the example configuration on the repo at url, with extra
// YAML appended (top-level keys the example does not set).
func configYAML(t testing.TB, url, extra string) string {
	t.Helper()
	b, err := os.ReadFile(examplePath)
	require.NoError(t, err)
	y := strings.Replace(string(b), "https://github.com/alphagov/govuk-helm-charts.git", url, 1)
	require.NotEqual(t, string(b), y)
	return y + extra
}

// withConfig serves yaml (its repo.url aside: the fixture's repo is served).
func withConfig(t testing.TB, yaml string) func(*Config, *Options) {
	cfg, err := ParseConfig([]byte(yaml))
	require.NoError(t, err)
	return func(c *Config, _ *Options) { *c = *cfg }
}

// command is a promoter command run by a person against f's repo, at f's clock.
func (f *fixture) command(t testing.TB, yaml string) Command {
	return Command{ConfigYAML: yaml, Git: gitauth.Options{Token: gitrepo.Password, Username: gitrepo.User, Names: gitauth.Names{Username: "--git-username"}},
		Now: func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }}
}

func heldFile(since time.Time, until string) string {
	s := "holds:\n  - environments: [staging]\n    apps: ['*']\n    reason: INC-1234\n    by: jane\n    since: " + since.Format(time.RFC3339) + "\n"
	if until != "" {
		s += "    until: " + until + "\n"
	}
	return s
}

// `promoter hold` stops the promoter: Running, asked again, the reason
// naming the hold; `promoter unhold` lifts it and the next call promotes.
func TestHoldStopsThePromoterUntilUnhold(t *testing.T) {
	f := newFixture(t, map[string]string{
		tagPath("integration", "frontend"): tagFile("v42"),
		tagPath("staging", "frontend"):     tagFile("v40"),
	}, nil)
	g, yaml := f.git, configYAML(t, f.git.URL(), "")

	held, err := Hold(context.Background(), HoldSettings{Command: f.command(t, yaml), Envs: "staging", Reason: "INC-1234 checkout errors", By: "jane"})
	require.NoError(t, err)
	assert.Equal(t, outcome.Updated, held.Outcome)
	assert.Equal(t, "held: INC-1234 checkout errors by jane since 2026-11-25T12:00:00Z, covering staging (all apps)", held.Reason)
	assert.Equal(t, g.Head(), held.Commit, "a hold is a commit")
	assert.Contains(t, g.Message("main"), "Hold staging (all apps): INC-1234 checkout errors\n\nSlipway-Hold-By: jane")

	args := promoteArgs(t, "wf-v42", promoteStep("frontend", "integration", "v42"))
	before := g.Head()
	for range 2 {
		r := f.execute(t, args)
		assert.Equal(t, wfv1.NodeRunning, r.Node.Phase)
		assert.Equal(t, "held: INC-1234 checkout errors by jane since 2026-11-25T12:00:00Z", r.Node.Message)
		assert.Equal(t, 5*time.Minute, r.Requeue.Duration, "asked again after maxRequeue")
	}
	assert.Equal(t, before, g.Head(), "nothing written while held")

	lifted, err := Unhold(context.Background(), HoldSettings{Command: f.command(t, yaml), Envs: "staging", Reason: "fixed", By: "sam"})
	require.NoError(t, err)
	assert.Equal(t, outcome.Updated, lifted.Outcome)
	assert.Equal(t, "lifted: INC-1234 checkout errors by jane, covering staging (all apps)", lifted.Reason)
	assert.Contains(t, g.Message("main"), "fixed\n\nSlipway-Unhold-By: sam")

	r := f.execute(t, args)
	assert.Equal(t, wfv1.NodeSucceeded, r.Node.Phase, r.Node.Message)
	assert.Equal(t, "true", outputsOf(r)["promoted"])
	got, _ := g.Read(tagPath("staging", "frontend"))
	assert.Equal(t, tagFile("v42"), got)
}

// What holds and what does not, for the promoter: an expired hold stops
// nothing; a holds file that cannot be parsed stops every promotion, and
// says why; a hold that ends after the decision deadline gives up at once.
func TestHoldsAsThePromoterReadsThem(t *testing.T) {
	for _, tc := range []struct {
		name, holds string
		phase       wfv1.NodePhase
		promoted    string
		reason      string
	}{
		{"an expired hold stops nothing", heldFile(wednesday.Add(-2*time.Hour), "2026-11-25T11:00:00Z"), wfv1.NodeSucceeded, "true", "promoted"},
		{"a hold on another environment", strings.Replace(heldFile(wednesday.Add(-2*time.Hour), ""), "[staging]", "[production]", 1),
			wfv1.NodeSucceeded, "true", "promoted"},
		{"a malformed holds file stops everything", "holds:\n  - environments: [staging\n", wfv1.NodeRunning, "",
			"held: the holds file charts/app-config/holds.yaml is malformed (yaml: line 1: did not find expected ',' or ']'): everything is held until it is fixed"},
		{"a typo stops everything too", "holds:\n  - enviroments: [staging]\n", wfv1.NodeRunning, "",
			"held: the holds file charts/app-config/holds.yaml is malformed (yaml: unmarshal errors: line 2: field enviroments not found in type holds.Hold): everything is held until it is fixed"},
		{"a hold lasting past the deadline gives up", heldFile(wednesday.Add(-2*time.Hour), "2026-12-25T00:00:00Z"), wfv1.NodeSucceeded, "false",
			"held: INC-1234 by jane since 2026-11-25T10:00:00Z until 2026-12-25T00:00:00Z, past the decision deadline (waiting since 2026-11-25T11:00:00Z)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GIT_COMMITTER_DATE", wednesday.Add(-time.Hour).Format(time.RFC3339))
			f := newFixture(t, map[string]string{
				tagPath("integration", "frontend"): tagFile("v42"),
				tagPath("staging", "frontend"):     tagFile("v40"),
				holdsPath:                          tc.holds,
			}, nil)
			r := f.execute(t, promoteArgs(t, "wf", promoteStep("frontend", "integration", "v42")))
			assert.Equal(t, tc.phase, r.Node.Phase)
			assert.Equal(t, tc.reason, r.Node.Message)
			if tc.promoted != "" {
				assert.Equal(t, tc.promoted, outputsOf(r)["promoted"])
			}
		})
	}
}

// A hold committed while the promotion's push is in flight is honoured on
// the retry: the holds file is read again at the head the push lands on.
func TestHoldLandingMidPushIsHonouredByThePromoter(t *testing.T) {
	t.Setenv("GIT_COMMITTER_DATE", wednesday.Add(-time.Hour).Format(time.RFC3339))
	f := newFixture(t, map[string]string{
		tagPath("integration", "frontend"): tagFile("v42"),
		tagPath("staging", "frontend"):     tagFile("v40"),
	}, nil)
	next := raceOnPush(t, f.git, "Hold staging", map[string]string{holdsPath: heldFile(wednesday.Add(-time.Minute), "")})
	r := f.execute(t, promoteArgs(t, "wf-v42", promoteStep("frontend", "integration", "v42")))
	assert.Equal(t, wfv1.NodeRunning, r.Node.Phase, r.Node.Message)
	assert.Equal(t, "held: INC-1234 by jane since 2026-11-25T11:59:00Z", r.Node.Message)
	assert.Equal(t, next, f.git.Head(), "nothing landed on top of the hold")
	assert.Equal(t, []string{"Hold staging", "Seed charts repo"}, subjects(f.git))
	assert.Equal(t, int64(1), f.git.Pushes(), "one push, refused; the second attempt found the hold")
}

// The rollback scenario end to end. Production runs v42, as staging does;
// production is rolled back to v40 with bump-tag --allow-downgrade;
// staging re-syncs (a values change) and its post-sync asks for v42
// again: production stays at v40, with the reason. A person can still
// deploy v42 by hand; v43 promotes as usual.
func TestRollbackStaysRolledBack(t *testing.T) {
	t.Setenv("GIT_COMMITTER_DATE", wednesday.Add(-2*time.Hour).Format(time.RFC3339))
	f := newFixture(t, map[string]string{
		tagPath("staging", "frontend"):    tagFile("v42"),
		tagPath("production", "frontend"): tagFile("v42"),
	}, nil)
	bump := func(tag string, downgrade bool) bumptag.Result {
		res, err := bumptag.Run(context.Background(), bumptag.Config{Repo: f.git.URL(), Branch: "main", Strategy: "direct",
			Git: gitauth.Options{Token: gitrepo.Password, Username: gitrepo.User}, App: "frontend", Env: "production", Tag: tag,
			AllowDowngrade: downgrade, MaxAttempts: 10, Timeout: time.Minute})
		require.NoError(t, err)
		return res
	}
	rb := bump("v40", true)
	require.Equal(t, outcome.RolledBack, rb.Outcome)
	assert.Contains(t, f.git.Message("main"), "Slipway-Rollback-From: v42")
	when := f.git.Git("log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%d %H:%M", "main")

	// Staging's re-sync: a values change, then its post-sync asks for v42.
	f.git.Commit("staging: bump replicas", map[string]string{"charts/app-config/values/staging/frontend.yaml": "replicas: 3\n"})
	f.setNow(time.Now())
	r := f.execute(t, promoteArgs(t, "wf-resync", promoteStep("frontend", "staging", "v42")))
	assert.Equal(t, wfv1.NodeSucceeded, r.Node.Phase, r.Node.Message)
	assert.Equal(t, map[string]string{"promoted": "false", "target-env": "production", "commit": "", "outcome": "rolled-back-from",
		"reason": "v42 was rolled back in production on " + when + " UTC: promote a newer release or deploy it by hand"}, outputsOf(r))
	got, _ := f.git.Read(tagPath("production", "frontend"))
	assert.Equal(t, tagFile("v40"), got, "production stays at v40")

	// A later edit of production's file that keeps v40 changes nothing.
	f.git.Commit("comment", map[string]string{tagPath("production", "frontend"): "# rolled back, see INC-77\n" + tagFile("v40")})
	r = f.execute(t, promoteArgs(t, "wf-resync-2", promoteStep("frontend", "staging", "v42")))
	assert.Equal(t, "false", outputsOf(r)["promoted"])
	assert.Contains(t, outputsOf(r)["reason"], "v42 was rolled back in production on "+when)

	// v43 reaches staging (an hour ago: soaked) and promotes as usual.
	t.Setenv("GIT_COMMITTER_DATE", time.Now().Add(-time.Hour).Format(time.RFC3339))
	f.git.Commit("v43 in staging", map[string]string{tagPath("staging", "frontend"): tagFile("v43")})
	f.setNow(nextWeekday(time.Now()))
	r = f.execute(t, promoteArgs(t, "wf-v43", promoteStep("frontend", "staging", "v43")))
	assert.Equal(t, wfv1.NodeSucceeded, r.Node.Phase, r.Node.Message)
	assert.Equal(t, "true", outputsOf(r)["promoted"])
	got, _ = f.git.Read(tagPath("production", "frontend"))
	assert.Equal(t, "# rolled back, see INC-77\n"+tagFile("v43"), got)

	// By hand, a person still deploys what they choose.
	assert.Equal(t, outcome.RolledBack, bump("v42", true).Outcome)
}

// nextWeekday is the first Wednesday noon at or after t outside the
// example's Christmas freeze: a time production is open.
func nextWeekday(t time.Time) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), 12, 0, 0, 0, time.UTC)
	for d.Weekday() != time.Wednesday || d.Before(t) || (d.Month() == time.December && d.Day() >= 20) || (d.Month() == time.January && d.Day() <= 5) {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

// promoter hold and unhold: a repeated hold adds nothing; unhold lifts
// only the holds within the scope it names, and says which wider hold is
// still there; a malformed holds file is refused (a person fixes it), as
// are bad flags.
func TestHoldAndUnholdCommands(t *testing.T) {
	f := newFixture(t, map[string]string{tagPath("staging", "frontend"): tagFile("v40")}, nil)
	yaml := configYAML(t, f.git.URL(), "")
	cmd := f.command(t, yaml)
	run := func(fn func(context.Context, HoldSettings) (HoldResult, error), st HoldSettings) (HoldResult, error) {
		st.Command = cmd
		return fn(context.Background(), st)
	}
	res, err := run(Hold, HoldSettings{Envs: "production", Apps: "frontend,router", Reason: "INC-1", By: "jane", Until: "2h"})
	require.NoError(t, err)
	assert.Equal(t, "held: INC-1 by jane since 2026-11-25T12:00:00Z until 2026-11-25T14:00:00Z, covering production (frontend, router)", res.Reason)
	head := f.git.Head()
	res, err = run(Hold, HoldSettings{Envs: "production", Apps: "frontend,router", Reason: "INC-1", By: "jane", Until: "2026-11-25T14:00:00Z"})
	require.NoError(t, err)
	assert.Equal(t, outcome.AlreadyThere, res.Outcome)
	assert.Equal(t, head, f.git.Head(), "the same hold again adds nothing")
	_, err = run(Hold, HoldSettings{Envs: "*", Reason: "freeze for the migration", By: "dba"})
	require.NoError(t, err)

	res, err = run(Unhold, HoldSettings{Envs: "production", Apps: "frontend", By: "sam"})
	require.NoError(t, err)
	assert.Equal(t, outcome.AlreadyThere, res.Outcome, "the frontend+router hold is wider than frontend")
	assert.Equal(t, "no hold within production (frontend) to lift; still held by INC-1 by jane, covering production (frontend, router) (wider than asked: lift it by its own scope)", res.Reason)
	res, err = run(Unhold, HoldSettings{Envs: "production", By: "sam"})
	require.NoError(t, err)
	assert.Equal(t, outcome.Updated, res.Outcome)
	assert.Equal(t, "lifted: INC-1 by jane, covering production (frontend, router); still held by freeze for the migration by dba, covering all environments (all apps) (wider than asked: lift it by its own scope)", res.Reason)
	content, _ := f.git.Read(holdsPath)
	assert.Contains(t, content, "# Holds: while one covers an app")
	assert.Contains(t, content, "freeze for the migration")
	assert.NotContains(t, content, "INC-1\n")
	res, err = run(Unhold, HoldSettings{Envs: "*", By: "sam"})
	require.NoError(t, err)
	assert.Equal(t, "lifted: freeze for the migration by dba, covering all environments (all apps)", res.Reason)

	f.git.Commit("broken", map[string]string{holdsPath: "holds: [\n"})
	head = f.git.Head()
	for _, fn := range []func(context.Context, HoldSettings) (HoldResult, error){Hold, Unhold} {
		_, err = run(fn, HoldSettings{Envs: "production", Reason: "x", By: "y"})
		assert.Equal(t, exitcode.Invalid, exitcode.Code(err), "%v", err)
		assert.ErrorContains(t, err, "charts/app-config/holds.yaml: malformed holds file: yaml: line 1")
		assert.ErrorContains(t, err, "fix it in a commit first (until then it holds everything)")
	}
	assert.Equal(t, head, f.git.Head())

	for _, bad := range []HoldSettings{
		{Reason: "no env", By: "x"},
		{Envs: "qa", Reason: "unknown env", By: "x"},
		{Envs: "production", Apps: "../x", Reason: "bad app", By: "x"},
		{Envs: "production", By: "x"},
		{Envs: "production", Reason: "r", By: "x", Until: "yesterday"},
		{Envs: "production", Reason: "r", By: "x", Until: "-1h"},
	} {
		_, err := run(Hold, bad)
		assert.Equal(t, exitcode.Invalid, exitcode.Code(err), "%+v: %v", bad, err)
	}
}
