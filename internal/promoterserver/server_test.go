package promoterserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/plugins/executor"
	gogithttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/redact"
	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
)

const (
	agentToken  = "agent-T0ken-4f1e9c"
	examplePath = "../../plugin/promoter.example.yaml"
)

func tagPath(env, app string) string { return "charts/app-config/image-tags/" + env + "/" + app }

func tagFile(tag string) string {
	return "# managed by CI\nimage_tag: " + tag + "\nautomatic_deploys_enabled: true\npromote_deployment: true\n"
}

// wednesday is outside every freeze of the example config.
var wednesday = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type fixture struct {
	git       *gitrepo.Server
	srv       *Server
	http      *httptest.Server
	logs      *bytes.Buffer // slog handlers serialise their writes; read after the server closed
	tokenFile string
	now       time.Time
	mu        sync.Mutex
}

func (f *fixture) setNow(t time.Time) { f.mu.Lock(); f.now = t; f.mu.Unlock() }

func newFixture(t testing.TB, files map[string]string, mod func(*Config, *Options)) *fixture {
	t.Helper()
	cfg, err := LoadConfig(examplePath)
	require.NoError(t, err)
	f := &fixture{git: gitrepo.New(t, files), logs: &bytes.Buffer{}, now: wednesday}
	f.tokenFile = filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(f.tokenFile, []byte(agentToken+"\n"), 0o600))
	red := &redact.Redactor{}
	red.Add(gitrepo.Password)
	o := Options{
		Config: cfg, TokenFile: f.tokenFile, RepoURL: f.git.URL(),
		Auth:     &gogithttp.BasicAuth{Username: gitrepo.User, Password: gitrepo.Password},
		Log:      slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Redactor: red,
		Now:      func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now },
	}
	if mod != nil {
		mod(cfg, &o)
	}
	// Registered before the HTTP server's Close, so it runs after it.
	t.Cleanup(func() {
		assert.NotContains(t, f.logs.String(), agentToken, "the agent's token is never logged")
		assert.NotContains(t, f.logs.String(), gitrepo.Password, "the git password is never logged")
	})
	f.srv, err = New(o)
	require.NoError(t, err)
	f.http = httptest.NewServer(f.srv.Handler())
	t.Cleanup(f.http.Close)
	return f
}

// promoteArgs builds a request the way the agent does, with Argo's types.
func promoteArgs(t testing.TB, uid string, plugin map[string]any) executor.ExecuteTemplateArgs {
	t.Helper()
	tmpl := &wfv1.Template{Name: "promote"}
	if plugin != nil {
		raw, err := json.Marshal(plugin)
		require.NoError(t, err)
		tmpl.Plugin = &wfv1.Plugin{Object: wfv1.Object{Value: raw}}
	}
	return executor.ExecuteTemplateArgs{
		Workflow: &executor.Workflow{ObjectMeta: executor.ObjectMeta{Name: "post-sync-abc", Namespace: "apps", UID: uid}},
		Template: tmpl,
	}
}

func promoteStep(app, from, tag string) map[string]any {
	return map[string]any{"promoter": map[string]any{"promote": map[string]any{"app": app, "from": from, "tag": tag}}}
}

func (f *fixture) post(t testing.TB, token string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.http.URL+ExecutePath, bytes.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// execute posts args and parses the reply with Argo's type.
func (f *fixture) execute(t *testing.T, args executor.ExecuteTemplateArgs) executor.ExecuteTemplateReply {
	t.Helper()
	body, err := json.Marshal(args)
	require.NoError(t, err)
	code, out := f.post(t, agentToken, body)
	require.Equal(t, http.StatusOK, code, out)
	var reply executor.ExecuteTemplateReply
	require.NoError(t, json.Unmarshal([]byte(out), &reply), out)
	if reply.Node != nil {
		if reply.Node.Phase == wfv1.NodeRunning {
			require.NotNil(t, reply.Requeue, "Running always comes with a requeue")
			require.Positive(t, reply.Requeue.Duration)
		} else {
			require.Nil(t, reply.Requeue, "a terminal phase never comes with a requeue")
		}
	}
	return reply
}

func outputsOf(r executor.ExecuteTemplateReply) map[string]string {
	m := map[string]string{}
	if r.Node == nil || r.Node.Outputs == nil {
		return m
	}
	for _, p := range r.Node.Outputs.Parameters {
		m[p.Name] = p.Value.String()
	}
	return m
}

func TestProtocol(t *testing.T) {
	f := newFixture(t, map[string]string{tagPath("integration", "frontend"): tagFile("v42")}, func(c *Config, _ *Options) {
		c.MaxBodyBytes = 4096
	})
	good, err := json.Marshal(promoteArgs(t, "uid-1", promoteStep("frontend", "production", "v42")))
	require.NoError(t, err)
	for _, tc := range []struct {
		name  string
		token string
		body  string
		code  int
		want  string
	}{
		{"no token", "", string(good), 403, "forbidden"},
		{"wrong token", "agent-T0ken-4f1e9d", string(good), 403, "forbidden"},
		{"token prefix only", agentToken[:5], string(good), 403, "forbidden"},
		{"container template is not ours", agentToken, mustJSON(t, promoteArgs(t, "u", nil)), 200, "{}\n"},
		{"another plugin is not ours", agentToken, mustJSON(t, promoteArgs(t, "u", map[string]any{"slack": map[string]any{"channel": "#x"}})), 200, "{}\n"},
		{"not JSON", agentToken, "{not json", 400, "bad request: body is not an ExecuteTemplateArgs"},
		{"no template", agentToken, `{"workflow":{"metadata":{"uid":"u"}}}`, 400, "template is missing"},
		{"promote missing", agentToken, mustJSON(t, promoteArgs(t, "u", map[string]any{"promoter": map[string]any{}})), 400, "plugin.promoter.promote is missing"},
		{"tag missing", agentToken, mustJSON(t, promoteArgs(t, "u", map[string]any{"promoter": map[string]any{"promote": map[string]any{"app": "frontend", "from": "staging"}}})), 400, "plugin.promoter.promote.tag is missing"},
		{"unknown argument", agentToken, mustJSON(t, promoteArgs(t, "u", map[string]any{"promoter": map[string]any{"promote": map[string]any{"app": "frontend", "from": "staging", "tag": "v1", "force": true}}})), 400, `unknown field "force"`},
		{"unknown environment", agentToken, mustJSON(t, promoteArgs(t, "u", promoteStep("frontend", "qa", "v42"))), 400, `promote.from: environment "qa" is not in the chain`},
		{"bad app name", agentToken, mustJSON(t, promoteArgs(t, "u", promoteStep("../etc", "staging", "v42"))), 400, "promote.app"},
		{"oversized body", agentToken, `{"template":{"name":"` + strings.Repeat("x", 5000) + `"}}`, 413, "larger than 4096 bytes"},
		{"last environment", agentToken, string(good), 200, `"phase":"Succeeded","message":"last environment"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := f.post(t, tc.token, []byte(tc.body))
			assert.Equal(t, tc.code, code, out)
			assert.Contains(t, out, tc.want)
		})
	}

	t.Run("rotated token file", func(t *testing.T) {
		require.NoError(t, os.WriteFile(f.tokenFile, []byte("rotated-token-value-123"), 0o600))
		future := time.Now().Add(time.Minute)
		require.NoError(t, os.Chtimes(f.tokenFile, future, future))
		code, _ := f.post(t, agentToken, good)
		assert.Equal(t, 403, code)
		code, _ = f.post(t, "rotated-token-value-123", good)
		assert.Equal(t, 200, code)
	})

	t.Run("healthz and metrics", func(t *testing.T) {
		resp, err := http.Get(f.http.URL + "/healthz")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		resp, err = http.Get(f.http.URL + "/metrics")
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Contains(t, string(b), `slipway_promoter_promotions_total{outcome="not_promoted",reason="last_environment"}`)
		assert.Contains(t, string(b), `slipway_promoter_requests_total{code="403"} 4`)
		assert.Contains(t, string(b), `slipway_promoter_requests_total{code="413"} 1`)
		assert.Contains(t, string(b), "slipway_promoter_decision_seconds_bucket")
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestEndToEnd(t *testing.T) {
	files := map[string]string{
		tagPath("integration", "frontend"): tagFile("v42"),
		tagPath("staging", "frontend"):     tagFile("v40"),
		tagPath("production", "frontend"):  tagFile("v39"),
	}
	for i := range 10 {
		app := fmt.Sprintf("app-%d", i)
		files[tagPath("integration", app)] = tagFile("v7")
		files[tagPath("staging", app)] = "image_tag: v6\n"
	}
	f := newFixture(t, files, nil)

	t.Run("v41's late post-sync is refused as stale", func(t *testing.T) {
		before := f.git.Head()
		r := f.execute(t, promoteArgs(t, "wf-v41", promoteStep("frontend", "integration", "v41")))
		assert.Equal(t, wfv1.NodeSucceeded, r.Node.Phase)
		assert.Equal(t, map[string]string{"promoted": "false", "target-env": "staging", "commit": "", "reason": "stale: integration now runs v42", "outcome": "stale"}, outputsOf(r))
		assert.Equal(t, before, f.git.Head(), "staging untouched")
	})
	t.Run("v42 lands", func(t *testing.T) {
		r := f.execute(t, promoteArgs(t, "wf-v42", promoteStep("frontend", "integration", "v42")))
		out := outputsOf(r)
		assert.Equal(t, wfv1.NodeSucceeded, r.Node.Phase, r.Node.Message)
		assert.Equal(t, "true", out["promoted"])
		assert.Equal(t, "staging", out["target-env"])
		assert.Equal(t, f.git.Head(), out["commit"])
		got, _ := f.git.Read(tagPath("staging", "frontend"))
		assert.Equal(t, tagFile("v42"), got, "only the tag changed, comment kept")
		msg := f.git.Message(out["commit"])
		assert.Contains(t, msg, "Promote frontend v42 to staging")
		assert.Contains(t, msg, "Slipway-Source-Env: integration")
		assert.Contains(t, msg, "Slipway-Workflow: wf-v42")
		assert.Contains(t, msg, "Slipway-Previous-Tag: v40")
	})
	t.Run("a second identical request is a no-op", func(t *testing.T) {
		before := f.git.Head()
		r := f.execute(t, promoteArgs(t, "wf-v42", promoteStep("frontend", "integration", "v42")))
		assert.Equal(t, wfv1.NodeSucceeded, r.Node.Phase)
		assert.Equal(t, "false", outputsOf(r)["promoted"])
		assert.Equal(t, "already there", outputsOf(r)["reason"])
		assert.Equal(t, before, outputsOf(r)["commit"], "the head that already has it")
		assert.Equal(t, before, f.git.Head())
	})
	t.Run("ten promotions for ten apps at once all land", func(t *testing.T) {
		var wg sync.WaitGroup
		replies := make([]executor.ExecuteTemplateReply, 10)
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body, _ := json.Marshal(promoteArgs(t, fmt.Sprintf("wf-%d", i), promoteStep(fmt.Sprintf("app-%d", i), "integration", "v7")))
				code, out := f.post(t, agentToken, body)
				if assert.Equal(t, 200, code, out) {
					assert.NoError(t, json.Unmarshal([]byte(out), &replies[i]))
				}
			}()
		}
		wg.Wait()
		for i, r := range replies {
			require.NotNil(t, r.Node, "app-%d", i)
			assert.Equal(t, wfv1.NodeSucceeded, r.Node.Phase, "app-%d: %s", i, r.Node.Message)
			assert.Equal(t, "true", outputsOf(r)["promoted"], "app-%d", i)
			got, _ := f.git.Read(tagPath("staging", fmt.Sprintf("app-%d", i)))
			assert.Equal(t, "image_tag: v7\npromote_deployment: true\n", got)
		}
		assert.Empty(t, f.git.EmptyCommits())
	})
	t.Run("a newer release in the target is kept", func(t *testing.T) {
		// v43 reaches staging on Wednesday at noon (its commit time is what soak counts from).
		t.Setenv("GIT_COMMITTER_DATE", wednesday.Format(time.RFC3339))
		f.git.Commit("v43 in staging", map[string]string{tagPath("staging", "frontend"): tagFile("v43")})
		// An edit that keeps the tag (a comment) does not restart the soak.
		t.Setenv("GIT_COMMITTER_DATE", wednesday.Add(15*time.Minute).Format(time.RFC3339))
		f.git.Commit("comment", map[string]string{tagPath("staging", "frontend"): "# checked\n" + tagFile("v43")})
		before := f.git.Head()
		r := f.execute(t, promoteArgs(t, "wf", promoteStep("frontend", "integration", "v42")))
		assert.Equal(t, "newer release present: staging runs v43", outputsOf(r)["reason"])
		assert.Equal(t, before, f.git.Head())
	})
	t.Run("production: weekend freeze waits, soak waits, then lands", func(t *testing.T) {
		// The weekend: Running, asked again after maxRequeue (5m).
		f.setNow(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
		r := f.execute(t, promoteArgs(t, "wf", promoteStep("frontend", "staging", "v43")))
		assert.Equal(t, wfv1.NodeRunning, r.Node.Phase)
		assert.Equal(t, 5*time.Minute, r.Requeue.Duration)
		assert.Contains(t, r.Node.Message, "waiting: weekly freeze Fri 17:00 to Mon 09:00 Europe/London")
		// Wednesday 12:20: v43 has soaked 20 of its 30 minutes.
		f.setNow(wednesday.Add(20 * time.Minute))
		r = f.execute(t, promoteArgs(t, "wf", promoteStep("frontend", "staging", "v43")))
		assert.Equal(t, wfv1.NodeRunning, r.Node.Phase)
		assert.Equal(t, "soaking: v43 in staging for 20m0s of 30m0s", r.Node.Message)
		assert.Equal(t, 5*time.Minute, r.Requeue.Duration, "10 minutes left, asked again after maxRequeue")
		f.setNow(wednesday.Add(31 * time.Minute))
		r = f.execute(t, promoteArgs(t, "wf", promoteStep("frontend", "staging", "v43")))
		assert.Equal(t, wfv1.NodeSucceeded, r.Node.Phase, r.Node.Message)
		assert.Equal(t, "true", outputsOf(r)["promoted"])
		got, _ := f.git.Read(tagPath("production", "frontend"))
		assert.Equal(t, tagFile("v43"), got)
		assert.Contains(t, f.git.Message(outputsOf(r)["commit"]), "Slipway-Source-Env: staging")
	})
}

func TestGitFailureIsOneClearFailedLine(t *testing.T) {
	f := newFixture(t, map[string]string{tagPath("integration", "frontend"): tagFile("v42")}, func(_ *Config, o *Options) {
		o.Auth = &gogithttp.BasicAuth{Username: gitrepo.User, Password: "wrong-" + gitrepo.Password}
		o.Redactor.Add("wrong-" + gitrepo.Password)
	})
	r := f.execute(t, promoteArgs(t, "wf", promoteStep("frontend", "integration", "v42")))
	assert.Equal(t, wfv1.NodeFailed, r.Node.Phase)
	assert.Contains(t, r.Node.Message, "read the charts repo")
	assert.NotContains(t, r.Node.Message, "\n")
	assert.NotContains(t, r.Node.Message, gitrepo.Password)
	assert.Equal(t, "false", outputsOf(r)["promoted"])
}

func TestMalformedTagFileFails(t *testing.T) {
	f := newFixture(t, map[string]string{
		tagPath("integration", "frontend"): tagFile("v42"),
		tagPath("staging", "frontend"):     "image_tag: [v1\n",
	}, nil)
	r := f.execute(t, promoteArgs(t, "wf", promoteStep("frontend", "integration", "v42")))
	assert.Equal(t, wfv1.NodeFailed, r.Node.Phase)
	assert.Contains(t, r.Node.Message, tagPath("staging", "frontend"))
}

func TestGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, &http.Server{Handler: h}, 10*time.Second) }()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-entered
	cancel() // what SIGTERM does through stepcli's context
	time.Sleep(50 * time.Millisecond)
	close(release)
	assert.Equal(t, "done", <-got, "the in-flight request finished")
	select {
	case err := <-served:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
	_, err = http.Get("http://" + ln.Addr().String() + "/")
	assert.Error(t, err, "no new connections after shutdown")
}

// raceOnPush makes files land on the branch while the promoter's first push
// is being received (a pre-receive hook moves the branch), the way another
// writer's commit lands between a read and a push in production.
func raceOnPush(t *testing.T, g *gitrepo.Server, msg string, files map[string]string) string {
	t.Helper()
	next := g.Commit(msg, files)
	g.Git("update-ref", "refs/heads/main", next+"^")
	g.InstallHook("pre-receive", `[ -f "$GIT_DIR/raced" ] && exit 0
touch "$GIT_DIR/raced"
env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main `+next+"\n")
	return next
}

// subjects lists the branch's commit subjects, newest first.
func subjects(g *gitrepo.Server) []string {
	return strings.Split(g.Git("log", "--format=%s", "main"), "\n")
}

// Rules 3 and 11 of docs/architecture.md under a fault: whatever lands on the
// branch while the promotion is being pushed, the decision is made again
// on the head that is pushed, and a promotion the new head does not allow
// never lands.
func TestPromotionIsDecidedAgainAtThePushedHead(t *testing.T) {
	disabled := "image_tag: v42\nautomatic_deploys_enabled: false\npromote_deployment: true\n"
	const branchSHA = "4f2c1d0e9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e"
	branchDeploy := "image_tag: " + branchSHA + "\nautomatic_deploys_enabled: true\npromote_deployment: false\n"
	for _, tc := range []struct {
		name    string
		msg     string
		race    map[string]string
		reason  string
		outcome string
	}{
		{"source disabled meanwhile", "stop promotions from integration",
			map[string]string{tagPath("integration", "frontend"): disabled}, "automatic_deploys_enabled is false in integration", "auto-deploy-disabled"},
		{"source moved to a newer tag meanwhile", "v43 in integration",
			map[string]string{tagPath("integration", "frontend"): tagFile("v43")}, "stale: integration now runs v43", "stale"},
		{"source moved to a branch deploy meanwhile", "branch deploy in integration",
			map[string]string{tagPath("integration", "frontend"): branchDeploy}, "stale: integration now runs " + branchSHA, "stale"},
		{"newer release reached the target meanwhile", "v43 in staging",
			map[string]string{tagPath("staging", "frontend"): tagFile("v43")}, "newer release present: staging runs v43", "newer-present"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, map[string]string{
				tagPath("integration", "frontend"): tagFile("v42"),
				tagPath("staging", "frontend"):     tagFile("v40"),
			}, nil)
			next := raceOnPush(t, f.git, tc.msg, tc.race)
			r := f.execute(t, promoteArgs(t, "wf-v42", promoteStep("frontend", "integration", "v42")))
			assert.Equal(t, wfv1.NodeSucceeded, r.Node.Phase, r.Node.Message)
			assert.Equal(t, map[string]string{"promoted": "false", "target-env": "staging", "commit": "", "reason": tc.reason, "outcome": tc.outcome}, outputsOf(r))
			assert.Equal(t, next, f.git.Head(), "nothing landed on top of %q", tc.msg)
			assert.Equal(t, []string{tc.msg, "Seed charts repo"}, subjects(f.git))
			assert.Equal(t, int64(1), f.git.Pushes(), "one push, refused; the second attempt decided not to push")
		})
	}
	t.Run("an unrelated change meanwhile: the promotion lands on top of it", func(t *testing.T) {
		f := newFixture(t, map[string]string{
			tagPath("integration", "frontend"): tagFile("v42"),
			tagPath("staging", "frontend"):     tagFile("v40"),
		}, nil)
		next := raceOnPush(t, f.git, "router v7", map[string]string{tagPath("integration", "router"): tagFile("v7")})
		r := f.execute(t, promoteArgs(t, "wf-v42", promoteStep("frontend", "integration", "v42")))
		assert.Equal(t, "true", outputsOf(r)["promoted"], r.Node.Message)
		assert.Equal(t, []string{"Promote frontend v42 to staging", "router v7", "Seed charts repo"}, subjects(f.git))
		assert.Equal(t, next, f.git.Git("rev-parse", "main^"))
	})
}

// The soak reading is valid for the head that is pushed: staging rolled
// back to v43 while the promotion was being pushed, so v43's soak starts
// again, though the file reads the same as at the first attempt's head.
func TestSoakIsReadAgainAtThePushedHead(t *testing.T) {
	t.Setenv("GIT_COMMITTER_DATE", wednesday.Format(time.RFC3339))
	f := newFixture(t, map[string]string{
		tagPath("staging", "frontend"):    tagFile("v43"),
		tagPath("production", "frontend"): tagFile("v42"),
	}, nil)
	seed := f.git.Head()
	t.Setenv("GIT_COMMITTER_DATE", wednesday.Add(5*time.Minute).Format(time.RFC3339))
	f.git.Commit("v44 in staging", map[string]string{tagPath("staging", "frontend"): tagFile("v44")})
	t.Setenv("GIT_COMMITTER_DATE", wednesday.Add(30*time.Minute).Format(time.RFC3339))
	rollback := f.git.Commit("roll staging back to v43", map[string]string{tagPath("staging", "frontend"): tagFile("v43")})
	f.git.Git("update-ref", "refs/heads/main", seed)
	f.git.InstallHook("pre-receive", `[ -f "$GIT_DIR/raced" ] && exit 0
touch "$GIT_DIR/raced"
env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main `+rollback+"\n")
	// At the seed, v43 has soaked 31 of its 30 minutes; at the pushed head, 1.
	f.setNow(wednesday.Add(31 * time.Minute))
	r := f.execute(t, promoteArgs(t, "wf", promoteStep("frontend", "staging", "v43")))
	assert.Equal(t, wfv1.NodeRunning, r.Node.Phase, r.Node.Message)
	assert.Equal(t, "soaking: v43 in staging for 1m0s of 30m0s", r.Node.Message)
	assert.Equal(t, rollback, f.git.Head(), "production untouched")
	got, _ := f.git.Read(tagPath("production", "frontend"))
	assert.Equal(t, tagFile("v42"), got)
}

// The plugin's HTTP server has every timeout set, the write one long enough
// for a reply that waited its whole budget, the read one well under the
// agent's 30 seconds.
func TestHTTPServerTimeouts(t *testing.T) {
	f := newFixture(t, nil, nil)
	hs := f.srv.HTTPServer()
	assert.Positive(t, hs.ReadHeaderTimeout)
	assert.Positive(t, hs.ReadTimeout)
	assert.Less(t, hs.ReadTimeout, AgentTimeout)
	assert.Greater(t, hs.WriteTimeout, f.srv.cfg.ReplyBudget)
	assert.Positive(t, hs.IdleTimeout)
	assert.NotNil(t, hs.Handler)
}

// A client that sends its headers and then trickles (or never finishes)
// its body is cut off by the read timeout instead of holding a connection.
func TestSlowClientIsCutOff(t *testing.T) {
	f := newFixture(t, nil, nil)
	hs := f.srv.HTTPServer()
	hs.ReadTimeout = 200 * time.Millisecond // the production value, scaled down
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, hs, 5*time.Second) }()
	defer func() { cancel(); <-served }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n{\"tem", ExecutePath, agentToken)
	require.NoError(t, err)
	// The guard only bounds the test; the server's timeout ends the read.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	out, err := io.ReadAll(conn)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server never cut the connection off")
	assert.NotContains(t, string(out), "200 OK")
}

// gatedProxy stands between the promoter and the git server and holds
// every request until release is called: a git server too slow to answer
// within the reply budget.
type gatedProxy struct {
	open     chan struct{}
	requests atomic.Int64
	once     sync.Once
}

func (g *gatedProxy) release() { g.once.Do(func() { close(g.open) }) }

func newGatedProxy(t *testing.T, target string) (*gatedProxy, string) {
	u, err := url.Parse(target)
	require.NoError(t, err)
	g := &gatedProxy{open: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.requests.Add(1)
		select {
		case <-g.open:
		case <-r.Context().Done():
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(g.release) // registered after Close: runs first, so no handler is left waiting
	return g, srv.URL + u.Path
}

// countLines counts the log lines with msg; read once the server is idle.
func countLines(logs, msg string) int { return strings.Count(logs, `"msg":"`+msg+`"`) }

// Git work that cannot finish within the reply budget answers Running with
// a short requeue; repeated calls join the one promotion still running
// (never a second one), and the call after it finished collects its result.
func TestSlowGitAnswersRunningThenARepeatedCallCollects(t *testing.T) {
	files := map[string]string{
		tagPath("integration", "frontend"): tagFile("v42"),
		tagPath("staging", "frontend"):     tagFile("v40"),
	}
	var proxy *gatedProxy
	f := newFixture(t, files, func(c *Config, o *Options) {
		c.ReplyBudget = 50 * time.Millisecond
		proxy, o.RepoURL = newGatedProxy(t, o.RepoURL)
	})
	args := promoteArgs(t, "wf-slow", promoteStep("frontend", "integration", "v42"))
	before := f.git.Head()
	for range 3 {
		r := f.execute(t, args)
		assert.Equal(t, wfv1.NodeRunning, r.Node.Phase)
		assert.Equal(t, "promotion in progress", r.Node.Message)
		assert.Equal(t, progressRequeue, r.Requeue.Duration)
	}
	assert.Equal(t, before, f.git.Head(), "nothing pushed while the git server holds every request")

	proxy.release()
	var r executor.ExecuteTemplateReply
	for calls := 0; ; calls++ {
		require.Less(t, calls, 400, "the promotion never finished")
		if r = f.execute(t, args); r.Node.Phase != wfv1.NodeRunning {
			break
		}
		assert.Equal(t, "promotion in progress", r.Node.Message)
	}
	assert.Equal(t, wfv1.NodeSucceeded, r.Node.Phase, r.Node.Message)
	assert.Equal(t, "true", outputsOf(r)["promoted"])
	assert.Equal(t, f.git.Head(), outputsOf(r)["commit"])
	assert.Equal(t, []string{"Promote frontend v42 to staging", "Seed charts repo"}, subjects(f.git))

	// Collected once: the next call decides afresh, and finds the work done.
	r = f.execute(t, args)
	assert.Equal(t, "already there", outputsOf(r)["reason"])
	f.http.Close()
	logs := f.logs.String()
	assert.Equal(t, 2, countLines(logs, "promotion started"), "one promotion for all the calls while it ran, one after")
	assert.GreaterOrEqual(t, countLines(logs, "joining the promotion already running"), 2)
}

// A failed promotion is handed out once: the next call (Argo's retry) runs
// it again instead of getting the old failure.
func TestFailureIsNotKeptForTheNextCall(t *testing.T) {
	f := newFixture(t, map[string]string{tagPath("integration", "frontend"): tagFile("v42")}, func(_ *Config, o *Options) {
		o.Auth = &gogithttp.BasicAuth{Username: gitrepo.User, Password: "wrong-" + gitrepo.Password}
		o.Redactor.Add("wrong-" + gitrepo.Password)
	})
	args := promoteArgs(t, "wf", promoteStep("frontend", "integration", "v42"))
	for range 2 {
		assert.Equal(t, wfv1.NodeFailed, f.execute(t, args).Node.Phase)
	}
	f.http.Close()
	assert.Equal(t, 2, countLines(f.logs.String(), "promotion started"))
}
