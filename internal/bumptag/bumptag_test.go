package bumptag

import (
	"context"
	"testing"
	"time"

	gogithttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/gitauth"
	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/release"
	"github.com/slipway-deploy/slipway/internal/tagfile"
	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
)

const (
	stagingFrontend = "charts/app-config/image-tags/staging/frontend"
	prodFrontend    = "charts/app-config/image-tags/production/frontend"
)

func charts(t *testing.T, s *gitrepo.Server) Charts {
	layout, err := chartsrepo.NewLayout("", "", tagfile.Keys{})
	require.NoError(t, err)
	policy, err := release.NewPolicy("")
	require.NoError(t, err)
	return Charts{Layout: layout, Policy: policy, Writer: gitwriter.New(gitwriter.Options{
		URL: s.URL(), Auth: &gogithttp.BasicAuth{Username: gitrepo.User, Password: gitrepo.Password},
		Backoff: func(int, time.Duration) time.Duration { return time.Millisecond },
	})}
}

// request is a Request for app, env and tag, checked the way Run checks them.
func request(t *testing.T, ch Charts, app, env, tag string) Request {
	a, err := chartsrepo.ParseApp(app)
	require.NoError(t, err)
	e, err := ch.Layout.ParseEnv(env)
	require.NoError(t, err)
	g, err := chartsrepo.ParseTag(tag)
	require.NoError(t, err)
	return Request{App: a, Env: e, Tag: g}
}

// runConfig is a bump-tag run against s, as the flags' defaults give it.
func runConfig(s *gitrepo.Server, c Config) Config {
	c.Repo, c.Branch, c.Strategy, c.MaxAttempts, c.Timeout = s.URL(), "main", "direct", 10, time.Minute
	c.Git = gitauth.Options{Token: gitrepo.Password, Username: gitrepo.User}
	return c
}

func boolp(b bool) *bool { return &b }

// exitCode is the code a step ends with: the error's, else the outcome's.
func exitCode(res Result, err error) int {
	if err != nil {
		return exitcode.Code(err)
	}
	return res.Outcome.ExitCode()
}

func TestDecisions(t *testing.T) {
	tests := []struct {
		name        string
		file        string // staging/frontend content; "" = missing
		req         Config
		wantOutcome outcome.Outcome
		wantChanged bool
		wantFile    string
		wantReason  string
		wantCode    int
		wantSubject string
	}{
		{name: "release sets promote true", wantOutcome: outcome.Updated,
			file: "image_tag: v41\npromote_deployment: true\n", req: Config{Tag: "v42"},
			wantChanged: true, wantFile: "image_tag: v42\npromote_deployment: true\n", wantReason: "updated",
			wantSubject: "Update frontend image tag to v42 for staging"},
		{name: "branch deploy sets promote false", wantOutcome: outcome.Updated,
			file: "image_tag: v41\npromote_deployment: true\n", req: Config{Tag: "0123456789abcdef0123456789abcdef01234567"},
			wantChanged: true, wantFile: "image_tag: 0123456789abcdef0123456789abcdef01234567\npromote_deployment: false\n", wantReason: "updated"},
		{name: "explicit promote false on a release", wantOutcome: outcome.Updated,
			file: "image_tag: v41\n", req: Config{Tag: "v42", PromoteDeployment: "false"},
			wantChanged: true, wantFile: "image_tag: v42\npromote_deployment: false\n"},
		{name: "already there", wantOutcome: outcome.AlreadyThere,
			file: "image_tag: v42\npromote_deployment: true\n", req: Config{Tag: "v42"},
			wantFile: "image_tag: v42\npromote_deployment: true\n", wantReason: "already at v42"},
		{name: "same tag, flag differs: flag updated", wantOutcome: outcome.Updated,
			file: "image_tag: v42\npromote_deployment: false\n", req: Config{Tag: "v42"},
			wantChanged: true, wantFile: "image_tag: v42\npromote_deployment: true\n"},
		{name: "downgrade refused", wantOutcome: outcome.NewerPresent,
			file: "image_tag: v42\npromote_deployment: true\n", req: Config{Tag: "v41"},
			wantFile: "image_tag: v42\npromote_deployment: true\n", wantReason: "refused downgrade: staging runs v42, newer than v41"},
		{name: "v9 after v10 is a downgrade", wantOutcome: outcome.NewerPresent,
			file: "image_tag: v10\n", req: Config{Tag: "v9"},
			wantFile: "image_tag: v10\n", wantReason: "refused downgrade"},
		{name: "rollback allowed and recorded", wantOutcome: outcome.RolledBack,
			file: "image_tag: v42\npromote_deployment: true\n", req: Config{Tag: "v41", AllowDowngrade: true},
			wantChanged: true, wantFile: "image_tag: v41\npromote_deployment: true\n", wantReason: "rolled back from v42",
			wantSubject: "Roll back frontend image tag to v41 for staging"},
		{name: "a release over a branch deploy is no downgrade", wantOutcome: outcome.Updated,
			file: "image_tag: 0123456789abcdef0123456789abcdef01234567\n", req: Config{Tag: "v1"},
			wantChanged: true, wantFile: "image_tag: v1\npromote_deployment: true\n"},
		{name: "compare-and-swap holds", wantOutcome: outcome.Updated,
			file: "image_tag: v41\n", req: Config{Tag: "v42", ExpectCurrent: "v41"},
			wantChanged: true, wantFile: "image_tag: v42\npromote_deployment: true\n"},
		{name: "compare-and-swap fails", wantOutcome: outcome.ExpectationFailed,
			file: "image_tag: v40\n", req: Config{Tag: "v42", ExpectCurrent: "v41"},
			wantFile: "image_tag: v40\n", wantCode: exitcode.Held},
		{name: "compare-and-swap after success is a no-op", wantOutcome: outcome.AlreadyThere,
			file: "image_tag: v42\npromote_deployment: true\n", req: Config{Tag: "v42", ExpectCurrent: "v41"},
			wantFile: "image_tag: v42\npromote_deployment: true\n", wantReason: "already at v42"},
		{name: "missing file", wantOutcome: outcome.Failed,
			req: Config{Tag: "v1"}, wantCode: exitcode.Invalid},
		{name: "missing file with create", wantOutcome: outcome.Updated,
			req: Config{Tag: "v1", Create: true}, wantChanged: true, wantFile: "image_tag: v1\npromote_deployment: true\n"},
		{name: "malformed file", wantOutcome: outcome.Failed,
			file: "image_tag: [v1\n", req: Config{Tag: "v2"}, wantFile: "image_tag: [v1\n", wantCode: exitcode.Invalid},
		{name: "custom message", wantOutcome: outcome.Updated,
			file: "image_tag: v1\n", req: Config{Tag: "v2", Message: "Deploy {{.Tag}} (was {{.PreviousTag}})"},
			wantChanged: true, wantFile: "image_tag: v2\npromote_deployment: true\n", wantSubject: "Deploy v2 (was v1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := map[string]string{prodFrontend: "image_tag: v1\n"}
			if tt.file != "" {
				files[stagingFrontend] = tt.file
			}
			s := gitrepo.New(t, files)
			head := s.Head()
			cfg := runConfig(s, tt.req)
			cfg.App, cfg.Env = "frontend", "staging"
			res, err := Run(context.Background(), cfg)
			assert.Equal(t, tt.wantCode, exitCode(res, err), "%v", err)
			assert.Equal(t, tt.wantOutcome, res.Outcome)
			assert.Equal(t, tt.wantChanged, res.Changed)
			got, _ := s.Read(stagingFrontend)
			assert.Equal(t, tt.wantFile, got)
			if tt.wantReason != "" {
				assert.Contains(t, res.Reason, tt.wantReason)
			}
			if !tt.wantChanged {
				assert.Equal(t, head, s.Head(), "no commit")
				return
			}
			assert.Equal(t, s.Head(), res.Commit)
			msg := s.Message("main")
			if tt.wantSubject != "" {
				assert.Equal(t, tt.wantSubject, msg[:len(tt.wantSubject)])
			}
			assert.Contains(t, msg, "Slipway-App: frontend\nSlipway-Env: staging\nSlipway-Tag: "+tt.req.Tag+"\n")
			if tt.req.AllowDowngrade {
				assert.Contains(t, msg, "Slipway-Previous-Tag: v42\n")
				assert.Contains(t, msg, "Slipway-Rollback: true")
				assert.Contains(t, msg, "Slipway-Rollback-From: v42")
				from, ok := RollbackFrom(msg)
				assert.True(t, ok)
				assert.Equal(t, "v42", from)
			} else {
				_, ok := RollbackFrom(msg)
				assert.False(t, ok, "only a rollback says it is one")
			}
		})
	}
}

func TestTrailers(t *testing.T) {
	s := gitrepo.New(t, map[string]string{stagingFrontend: "image_tag: v1\n"})
	ch := charts(t, s)
	req := request(t, ch, "frontend", "staging", "v2")
	req.Workflow = "5f0e-uid"
	var err error
	req.SourceEnv, err = ch.Layout.ParseEnv("integration")
	require.NoError(t, err)
	_, err = Write(context.Background(), ch, req)
	require.NoError(t, err)
	assert.Equal(t, "Update frontend image tag to v2 for staging\n\n"+
		"Slipway-App: frontend\nSlipway-Env: staging\nSlipway-Tag: v2\nSlipway-Previous-Tag: v1\n"+
		"Slipway-Source-Env: integration\nSlipway-Workflow: 5f0e-uid", s.Message("main"))
	// git itself reads them as trailers
	assert.Equal(t, "v1", s.Git("log", "-1", "--format=%(trailers:key=Slipway-Previous-Tag,valueonly)"))
}

func TestInvalidBeforeNetwork(t *testing.T) {
	// A remote pointing nowhere: validation must fail before it is used.
	base := Config{Repo: "http://127.0.0.1:1/none", Branch: "main", Strategy: "direct", MaxAttempts: 10, Timeout: time.Minute}
	for _, mod := range []func(*Config){
		func(c *Config) { c.App, c.Env, c.Tag = "../etc", "staging", "v1" },
		func(c *Config) { c.App, c.Env, c.Tag = "frontend", "preview", "v1" },
		func(c *Config) { c.App, c.Env, c.Tag = "frontend", "staging", "v 1" },
		func(c *Config) { c.App, c.Env, c.Tag = "frontend", "staging", "v1\n" },
		func(c *Config) { c.App, c.Env, c.Tag, c.ExpectCurrent = "frontend", "staging", "v1", "a b" },
		func(c *Config) { c.App, c.Env, c.Tag, c.Message = "frontend", "staging", "v1", "{{.Nope}}" },
		func(c *Config) { c.App, c.Env, c.Tag, c.PromoteDeployment = "frontend", "staging", "v1", "maybe" },
		func(c *Config) { c.App, c.Env, c.Tag, c.Strategy = "frontend", "staging", "v1", "merge" },
		func(c *Config) { c.App, c.Env, c.Tag, c.MaxAttempts = "frontend", "staging", "v1", 0 },
		func(c *Config) { c.App, c.Env, c.Tag, c.Environments = "frontend", "staging", "v1", "a,,b" },
		func(c *Config) { c.App, c.Env, c.Tag, c.ReleasePattern = "frontend", "staging", "v1", "v[" },
		func(c *Config) { c.App, c.Env, c.Tag, c.Repo = "frontend", "staging", "v1", "ftp://x/y" },
	} {
		cfg := base
		mod(&cfg)
		_, err := Run(context.Background(), cfg)
		assert.Equal(t, exitcode.Invalid, exitcode.Code(err), "%+v: %v", cfg, err)
	}
}

// A Gate is asked on every attempt, at the head the commit would be pushed
// onto, and its "no" stops the write even when an earlier attempt said yes.
func TestGateDecidesAtEveryAttemptsHead(t *testing.T) {
	const flag = "charts/app-config/image-tags/staging/stop"
	s := gitrepo.New(t, map[string]string{stagingFrontend: "image_tag: v41\npromote_deployment: true\n"})
	// Lands while our first push is being received: the gate's input changes.
	next := s.Commit("stop", map[string]string{flag: "stop\n"})
	s.Git("update-ref", "refs/heads/main", next+"^")
	s.InstallHook("pre-receive", `[ -f "$GIT_DIR/raced" ] && exit 0
touch "$GIT_DIR/raced"
env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main `+next+"\n")
	var heads []string
	gate := func(at gitwriter.Current, _ *tagfile.File) (outcome.Outcome, string, error) {
		heads = append(heads, at.Head)
		stop, err := at.Read(flag)
		if err != nil || stop.Exists {
			return outcome.NotPromotable, "stopped by " + flag, err
		}
		return outcome.Promoted, "promoted", nil
	}
	ch := charts(t, s)
	req := request(t, ch, "frontend", "staging", "v42")
	req.Gate = gate
	res, err := Write(context.Background(), ch, req)
	require.NoError(t, err)
	assert.False(t, res.Changed)
	assert.Equal(t, "stopped by "+flag, res.Reason)
	assert.Equal(t, outcome.NotPromotable, res.Outcome, "the gate's outcome is the result's")
	require.Len(t, heads, 2)
	assert.Equal(t, next, heads[1], "asked again at the head that moved")
	assert.Equal(t, next, s.Head(), "nothing pushed on top")
	got, _ := s.Read(stagingFrontend)
	assert.Equal(t, "image_tag: v41\npromote_deployment: true\n", got)
}

// With a Gate, bumptag's own rules do not decide again (the gate already
// did), but an edit that would change nothing is still no commit.
func TestGateReplacesBumptagsRules(t *testing.T) {
	s := gitrepo.New(t, map[string]string{stagingFrontend: "image_tag: v43\npromote_deployment: true\n"})
	yes := func(gitwriter.Current, *tagfile.File) (outcome.Outcome, string, error) {
		return outcome.Promoted, "promoted", nil
	}
	ch := charts(t, s)
	req := request(t, ch, "frontend", "staging", "v42")
	req.Gate, req.Promote = yes, boolp(true)
	var err error
	req.Message, err = ParseMessage("Roll {{.Tag}}")
	require.NoError(t, err)
	res, err := Write(context.Background(), ch, req)
	require.NoError(t, err)
	assert.True(t, res.Changed, "the gate allowed it: no downgrade refusal")
	assert.Equal(t, outcome.Promoted, res.Outcome)
	assert.Equal(t, "promoted", res.Reason)
	head := s.Head()
	req.Message = nil
	res, err = Write(context.Background(), ch, req)
	require.NoError(t, err)
	assert.False(t, res.Changed)
	assert.Equal(t, "already at v42", res.Reason)
	assert.Equal(t, outcome.AlreadyThere, res.Outcome)
	assert.Equal(t, head, s.Head())
	assert.Empty(t, s.EmptyCommits())
}

const holdsPath = "charts/app-config/holds.yaml"

// holdFile is a holds file with one hold set an hour ago, lasting until
// until (zero: until lifted).
func holdFile(envs, apps string, until time.Time) string {
	s := "holds:\n  - environments: [" + envs + "]\n    apps: [" + apps + "]\n    reason: INC-1234\n    by: jane\n" +
		"    since: " + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + "\n"
	if !until.IsZero() {
		s += "    until: " + until.UTC().Format(time.RFC3339) + "\n"
	}
	return s
}

// A hold in the holds file, read at the same head as the tag file, stops
// bump-tag with exit 3 and one line naming it; an expired hold, or one on
// another app or environment, stops nothing; --override-hold writes
// through it and records both; a holds file that cannot be parsed holds
// everything.
func TestHolds(t *testing.T) {
	const v41 = "image_tag: v41\npromote_deployment: true\n"
	tests := []struct {
		name, holds string
		cfg         Config
		outcome     outcome.Outcome
		code        int
		reason      string
		trailers    []string
	}{
		{name: "held", holds: holdFile("staging", "'*'", time.Time{}), outcome: outcome.Held, code: exitcode.Held,
			reason: "held: INC-1234 by jane since "},
		{name: "held for this app", holds: holdFile("'*'", "frontend, router", time.Time{}), outcome: outcome.Held, code: exitcode.Held,
			reason: "covering all environments (frontend, router); --override-hold REASON writes anyway"},
		{name: "held until later", holds: holdFile("staging", "frontend", time.Now().Add(time.Hour)), outcome: outcome.Held, code: exitcode.Held,
			reason: " until "},
		{name: "an expired hold stops nothing", holds: holdFile("staging", "'*'", time.Now().Add(-time.Minute)), outcome: outcome.Updated},
		{name: "a hold on another environment", holds: holdFile("production", "'*'", time.Time{}), outcome: outcome.Updated},
		{name: "a hold on another app", holds: holdFile("staging", "router", time.Time{}), outcome: outcome.Updated},
		{name: "no holds", holds: "holds: []\n", outcome: outcome.Updated},
		{name: "a malformed holds file holds everything", holds: "holds:\n  - environments: [staging\n", outcome: outcome.Held, code: exitcode.Held,
			reason: "held: the holds file charts/app-config/holds.yaml is malformed (yaml: line 1: did not find expected ',' or ']'): everything is held until it is fixed; --override-hold REASON writes anyway"},
		{name: "a typo is malformed too", holds: "holds:\n  - environment: [staging]\n", outcome: outcome.Held, code: exitcode.Held,
			reason: "field environment not found"},
		{name: "override", holds: holdFile("staging", "'*'", time.Time{}), cfg: Config{OverrideHold: "hotfix for INC-1234, approved by sam"},
			outcome: outcome.Updated, trailers: []string{"Slipway-Override-Hold: hotfix for INC-1234, approved by sam\n", "Slipway-Overridden-Hold: INC-1234 by jane since "}},
		{name: "override a malformed file", holds: "holds: [\n", cfg: Config{OverrideHold: "the holds file is broken"},
			outcome: outcome.Updated, trailers: []string{"Slipway-Override-Hold: the holds file is broken\n", "Slipway-Overridden-Hold: the holds file charts/app-config/holds.yaml is malformed"}},
		{name: "an override with nothing held records nothing", holds: "holds: []\n", cfg: Config{OverrideHold: "just in case"}, outcome: outcome.Updated},
		{name: "already there while held: nothing to write", holds: holdFile("staging", "'*'", time.Time{}), cfg: Config{Tag: "v41"},
			outcome: outcome.AlreadyThere, reason: "already at v41"},
		{name: "a dry run says it would be held", holds: holdFile("staging", "'*'", time.Time{}), cfg: Config{DryRun: true},
			outcome: outcome.Held, code: exitcode.Held},
		{name: "another holds file", holds: holdFile("staging", "'*'", time.Time{}), cfg: Config{HoldsFile: "ops/holds.yaml"}, outcome: outcome.Updated},
		{name: "an invalid holds file path", holds: "holds: []\n", cfg: Config{HoldsFile: "../holds.yaml"}, outcome: 0, code: exitcode.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := gitrepo.New(t, map[string]string{stagingFrontend: v41, holdsPath: tt.holds})
			head := s.Head()
			cfg := runConfig(s, tt.cfg)
			cfg.App, cfg.Env = "frontend", "staging"
			if cfg.Tag == "" {
				cfg.Tag = "v42"
			}
			res, err := Run(context.Background(), cfg)
			assert.Equal(t, tt.code, exitCode(res, err), "%v", err)
			assert.Equal(t, tt.outcome, res.Outcome)
			assert.Contains(t, res.Reason, tt.reason)
			assert.NotContains(t, res.Reason, "\n")
			if !tt.outcome.Wrote() {
				assert.Equal(t, head, s.Head(), "nothing written")
				return
			}
			got, _ := s.Read(stagingFrontend)
			assert.Equal(t, "image_tag: v42\npromote_deployment: true\n", got)
			msg := s.Message("main")
			for _, tr := range tt.trailers {
				assert.Contains(t, msg, tr)
			}
			if tt.trailers == nil {
				assert.NotContains(t, msg, "Hold")
			}
		})
	}
}

// A hold committed while bump-tag's push is in flight is honoured on the
// retry: the holds file is read again at the head the write would land on.
func TestHoldLandingMidPushIsHonoured(t *testing.T) {
	s := gitrepo.New(t, map[string]string{stagingFrontend: "image_tag: v41\n"})
	next := s.Commit("Hold staging", map[string]string{holdsPath: holdFile("staging", "'*'", time.Time{})})
	s.Git("update-ref", "refs/heads/main", next+"^")
	s.InstallHook("pre-receive", `[ -f "$GIT_DIR/raced" ] && exit 0
touch "$GIT_DIR/raced"
env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main `+next+"\n")
	cfg := runConfig(s, Config{App: "frontend", Env: "staging", Tag: "v42"})
	res, err := Run(context.Background(), cfg)
	assert.Equal(t, exitcode.Held, exitCode(res, err), "%v", err)
	assert.Equal(t, outcome.Held, res.Outcome)
	assert.Contains(t, res.Reason, "held: INC-1234 by jane")
	assert.Equal(t, 2, res.Attempts, "the first push was refused; the second attempt found the hold")
	assert.Equal(t, next, s.Head(), "nothing landed on top of the hold")
	got, _ := s.Read(stagingFrontend)
	assert.Equal(t, "image_tag: v41\n", got)
}

func TestRollbackFrom(t *testing.T) {
	for msg, want := range map[string]string{
		"Roll back a\n\nSlipway-App: a\nSlipway-Rollback: true\nSlipway-Rollback-From: v42\n": "v42",
		"Roll back a\n\nSlipway-Previous-Tag: v42\nSlipway-Rollback: true\n":                  "v42", // written before Rollback-From
		"Roll back a\n\nSlipway-Previous-Tag: none\nSlipway-Rollback: true\n":                 "",
		"Update a\n\nSlipway-Previous-Tag: v42\n":                                             "",
		"Slipway-Rollback-From: v42\n":                                                        "", // a subject, not a trailer
		"Roll back\n\nSlipway-Rollback-From: v9\n\nSigned-off-by: x\n":                        "", // not the last paragraph
		"": "",
	} {
		got, ok := RollbackFrom(msg)
		assert.Equal(t, want, got, "%q", msg)
		assert.Equal(t, want != "", ok, "%q", msg)
	}
}
