package promoter

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path"
	"strings"
	"sync"
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

// otherCommits adds n commits that change no tag file (as other apps'
// values changes do), in one git fast-import.
func otherCommits(t *testing.T, git *gitrepo.Server, n int) {
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "commit refs/heads/main\ncommitter Other <other@example.invalid> %d +0000\ndata 6\nother\n", wednesday.Add(-time.Hour).Unix()+int64(i))
		if i == 0 {
			fmt.Fprintf(&in, "from %s\n", git.Head())
		}
		fmt.Fprintf(&in, "M 100644 inline charts/app-config/values/other-%d.yaml\ndata 2\nx\n", i)
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir, cmd.Stdin = git.Dir, strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// requestLog stands between the promoter and the git server and records
// each request: method and service.
type requestLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	calls := l.calls
	l.calls = nil
	return calls
}

func proxied(t *testing.T, target string) (*requestLog, string) {
	u, err := url.Parse(target)
	require.NoError(t, err)
	l := &requestLog{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		call := r.Method + " " + path.Base(r.URL.Path)
		if r.Method == http.MethodGet {
			call = r.Method + " " + r.URL.Query().Get("service")
		}
		l.mu.Lock()
		l.calls = append(l.calls, call)
		l.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return l, srv.URL + u.Path
}

// The target's history that rule 13 reads comes with the promotion's own
// fetch when the commit that set the target's tag is recent: a promotion
// costs the three requests of any write (the ref advertisement, the
// fetch, the push). When that commit lies further back (a rollback 60
// commits ago), the history is fetched deeper until it is found, and the
// rollback still holds.
func TestPromotionReadsTheTargetsHistoryWithItsOwnFetch(t *testing.T) {
	t.Setenv("GIT_COMMITTER_DATE", wednesday.Add(-time.Hour).Format(time.RFC3339))
	git := gitrepo.New(t, map[string]string{
		tagPath("integration", "frontend"): tagFile("v41"),
		tagPath("staging", "frontend"):     tagFile("v39"),
		tagPath("staging", "search"):       tagFile("v5"),
		tagPath("production", "search"):    tagFile("v5"),
	})
	otherCommits(t, git, 100)
	// search: rolled back in production from v6, 60 commits ago.
	git.Commit("Promote search v6 to production", map[string]string{tagPath("production", "search"): tagFile("v6")})
	git.Commit("Roll back search to v5\n\nSlipway-Rollback-From: v6\n", map[string]string{tagPath("production", "search"): tagFile("v5")})
	otherCommits(t, git, 60)
	git.Commit("Promote frontend v40 to staging", map[string]string{tagPath("staging", "frontend"): tagFile("v40")})
	otherCommits(t, git, 5)
	git.Commit("search v6 in staging", map[string]string{tagPath("staging", "search"): tagFile("v6")})

	log, u := proxied(t, git.URL())
	cfg := config(t, u)
	res, err := New(cfg).Promote(context.Background(), request(t, cfg, "frontend", "integration", "v41"))
	require.NoError(t, err)
	assert.Equal(t, outcome.Promoted, res.Outcome, res.Reason)
	assert.Equal(t, []string{"GET git-upload-pack", "POST git-upload-pack", "POST git-receive-pack"}, log.take(),
		"the target's history came with the write's fetch")

	res, err = New(cfg).Promote(context.Background(), request(t, cfg, "search", "staging", "v6"))
	require.NoError(t, err)
	assert.Equal(t, outcome.RolledBackFrom, res.Outcome, res.Reason)
	calls := log.take()
	assert.Greater(t, len(calls), 2, "the history was fetched deeper: %v", calls)
	assert.NotContains(t, calls, "POST git-receive-pack")
	got, _ := git.Read(tagPath("production", "search"))
	assert.Equal(t, tagFile("v5"), got)
}
