package promoter

import (
	"context"
	"testing"
	"time"

	gogithttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/promotion"
	"github.com/slipway-deploy/slipway/internal/release"
	"github.com/slipway-deploy/slipway/internal/tagfile"
	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
	"github.com/slipway-deploy/slipway/internal/testsupport/latency"
)

// wednesday is outside every freeze.
var wednesday = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func tagPath(env, app string) string { return "charts/app-config/image-tags/" + env + "/" + app }

func tagFile(tag string) string {
	return "# managed by CI\nimage_tag: " + tag + "\nautomatic_deploys_enabled: true\npromote_deployment: true\n"
}

// config is GOV.UK's chain with 30 minutes of soak before production.
func config(t testing.TB, url string) Config {
	layout, err := chartsrepo.NewLayout("", "", tagfile.DefaultKeys)
	require.NoError(t, err)
	rel, err := release.NewPolicy("")
	require.NoError(t, err)
	return Config{
		Layout: layout,
		Policy: promotion.Policy{Releases: rel, Next: layout.Next, Soak: map[string]time.Duration{"production": 30 * time.Minute}},
		Git: gitwriter.Options{URL: url, Auth: &gogithttp.BasicAuth{Username: gitrepo.User, Password: gitrepo.Password},
			Backoff: func(int, time.Duration) time.Duration { return time.Millisecond }},
		Now: func() time.Time { return wednesday },
	}
}

// request checks the names the way the transport does.
func request(t testing.TB, cfg Config, app, from, tag string) Request {
	a, err := chartsrepo.ParseApp(app)
	require.NoError(t, err)
	f, err := cfg.Layout.ParseEnv(from)
	require.NoError(t, err)
	g, err := chartsrepo.ParseTag(tag)
	require.NoError(t, err)
	return Request{App: a, From: f, Tag: g, Workflow: "wf"}
}

// Every way Promote ends, with the outputs the promote step reports: only
// a promotion says promoted=true; the commit is the new one, or the head
// that already had the tag, and nothing else.
func TestPromoteOutcomesAndOutputs(t *testing.T) {
	t.Setenv("GIT_COMMITTER_DATE", wednesday.Add(-10*time.Minute).Format(time.RFC3339))
	git := gitrepo.New(t, map[string]string{
		tagPath("integration", "frontend"): tagFile("v42"),
		tagPath("staging", "frontend"):     tagFile("v41"),
		tagPath("staging", "search"):       tagFile("v5"),
		tagPath("production", "search"):    tagFile("v4"),
		tagPath("integration", "router"):   tagFile("v7"),
		tagPath("staging", "router"):       "image_tag: [v1\n",
	})
	cfg := config(t, git.URL())
	p := New(cfg)
	ctx := context.Background()
	type want struct {
		outcome outcome.Outcome
		outputs map[string]string
		err     string
	}
	check := func(t *testing.T, res Result, err error, w want) {
		t.Helper()
		if w.err != "" {
			assert.ErrorContains(t, err, w.err)
		} else {
			require.NoError(t, err)
		}
		assert.Equal(t, w.outcome, res.Outcome)
		assert.Contains(t, Outcomes, res.Outcome, "Outcomes lists every outcome Promote returns")
		if w.outputs != nil {
			assert.Equal(t, w.outputs, res.Outputs())
		}
		assert.Equal(t, res.Outputs(), res.Report().Outputs)
	}

	res, err := p.Promote(ctx, request(t, cfg, "frontend", "production", "v42"))
	check(t, res, err, want{outcome.LastEnvironment, map[string]string{"promoted": "false", "target-env": "", "commit": "", "reason": "last environment"}, ""})

	res, err = p.Promote(ctx, request(t, cfg, "frontend", "integration", "v41"))
	check(t, res, err, want{outcome.Stale, map[string]string{"promoted": "false", "target-env": "staging", "commit": "", "reason": "stale: integration now runs v42"}, ""})

	res, err = p.Promote(ctx, request(t, cfg, "frontend", "integration", "v42"))
	check(t, res, err, want{outcome.Promoted, map[string]string{"promoted": "true", "target-env": "staging", "commit": git.Head(), "reason": "promoted"}, ""})

	head := git.Head()
	res, err = p.Promote(ctx, request(t, cfg, "frontend", "integration", "v42"))
	check(t, res, err, want{outcome.AlreadyThere, map[string]string{"promoted": "false", "target-env": "staging", "commit": head, "reason": "already there"}, ""})

	res, err = p.Promote(ctx, request(t, cfg, "search", "staging", "v5"))
	check(t, res, err, want{outcome.Soaking, map[string]string{"promoted": "false", "target-env": "production", "commit": "",
		"reason": "soaking: v5 in staging for 10m0s of 30m0s"}, ""})
	assert.Equal(t, 5*time.Minute, res.Requeue, "asked again after at most maxRequeue")

	res, err = p.Promote(ctx, request(t, cfg, "router", "integration", "v7"))
	check(t, res, err, want{outcome.Failed, nil, tagPath("staging", "router")})
	assert.Equal(t, "staging", res.Target.String(), "a failure names its target")
	assert.Equal(t, head, git.Head(), "nothing written since the promotion")
}

// tagSetAt reads the history at the head the decision is made on, not at
// the branch's tip: after the branch moved on, v42's soak still starts
// when v42 was set, as seen from the head being decided on.
func TestTagSetAtReadsTheHistoryAtTheDecisionsHead(t *testing.T) {
	t.Setenv("GIT_COMMITTER_DATE", wednesday.Format(time.RFC3339))
	git := gitrepo.New(t, map[string]string{tagPath("staging", "frontend"): tagFile("v42")})
	p := New(config(t, git.URL()))
	w := p.writer()
	at, err := w.Read(context.Background(), tagPath("staging", "frontend"))
	require.NoError(t, err)
	t.Setenv("GIT_COMMITTER_DATE", wednesday.Add(time.Hour).Format(time.RFC3339))
	git.Commit("v43", map[string]string{tagPath("staging", "frontend"): tagFile("v43")})
	when, err := p.tagSetAt(context.Background(), at, tagPath("staging", "frontend"), "v42")
	require.NoError(t, err)
	assert.True(t, wednesday.Equal(when), when)
	at, err = w.Read(context.Background(), tagPath("staging", "frontend"))
	require.NoError(t, err)
	when, err = p.tagSetAt(context.Background(), at, tagPath("staging", "frontend"), "v43")
	require.NoError(t, err)
	assert.True(t, wednesday.Add(time.Hour).Equal(when), when)
}

// BenchmarkDecisionFetched: the decision with the repo already fetched:
// both tag files parsed and the rules applied (an "already there" case).
func BenchmarkDecisionFetched(b *testing.B) {
	cfg := config(b, "")
	p := New(cfg)
	src := gitwriter.Current{Exists: true, Content: []byte(tagFile("v42"))}
	dst := gitwriter.Current{Exists: true, Content: []byte(tagFile("v42"))}
	req := request(b, cfg, "frontend", "staging", "v42")
	preq := promotion.Request{App: req.App, From: req.From, Tag: req.Tag}
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		var st promotion.State
		st.Source, _ = p.parse("a", src)
		st.Target, _ = p.parse("b", dst)
		d := promotion.Decide(cfg.Policy, preq, st, wednesday)
		ds = append(ds, time.Since(t0))
		if d.Outcome != outcome.AlreadyThere {
			b.Fatal(d.Reason)
		}
	}
	latency.Report(b, ds)
}
