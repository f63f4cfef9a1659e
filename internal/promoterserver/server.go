package promoterserver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/plugins/executor"
	"github.com/go-git/go-git/v5/plumbing/transport"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipway-deploy/slipway/internal/bumptag"
	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/promotion"
	"github.com/slipway-deploy/slipway/internal/redact"
	"github.com/slipway-deploy/slipway/internal/tagfile"
)

// ExecutePath is where the agent posts.
const ExecutePath = "/api/v1/template.execute"

// Options are what a Server needs besides its Config.
type Options struct {
	Config    *Config
	TokenFile string
	// RepoURL and Auth are the resolved charts repo remote.
	RepoURL string
	Auth    transport.AuthMethod
	Log     *slog.Logger
	// Redactor masks secrets in reply messages.
	Redactor *redact.Redactor
	// Now is the clock (time.Now by default).
	Now func() time.Time
}

// Server serves the executor-plugin protocol.
type Server struct {
	o       Options
	cfg     *Config
	log     *slog.Logger
	metrics *metrics
	token   tokenFile
	writers chan *gitwriter.Writer
	jobs    jobs
}

// New returns a Server; it reads the token file at once so that a missing
// one is reported at start-up.
func New(o Options) (*Server, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Redactor == nil {
		o.Redactor = &redact.Redactor{}
	}
	s := &Server{o: o, cfg: o.Config, log: o.Log, metrics: newMetrics(), token: tokenFile{path: o.TokenFile},
		writers: make(chan *gitwriter.Writer, 16)}
	if _, err := s.token.get(); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler routes the plugin's endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ExecutePath, s.execute)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.Handle("GET /metrics", s.metrics.handler())
	return mux
}

// tokenFile is the agent's token, re-read when the file changes (rotation).
type tokenFile struct {
	path  string
	mu    sync.Mutex
	mod   time.Time
	size  int64
	value []byte
}

func (t *tokenFile) get() ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fi, err := os.Stat(t.path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	if t.value != nil && fi.ModTime().Equal(t.mod) && fi.Size() == t.size {
		return t.value, nil
	}
	b, err := os.ReadFile(t.path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	v := []byte(strings.TrimSpace(string(b)))
	if len(v) == 0 {
		return nil, fmt.Errorf("token file %s is empty", t.path)
	}
	t.value, t.mod, t.size = v, fi.ModTime(), fi.Size()
	return v, nil
}

// authorised compares the bearer token in constant time.
func (s *Server) authorised(r *http.Request) bool {
	want, err := s.token.get()
	if err != nil {
		s.log.Error("cannot read the token file", "error", err.Error())
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) == 1
}

func (s *Server) execute(w http.ResponseWriter, r *http.Request) {
	if !s.authorised(r) {
		s.metrics.requests.WithLabelValues("403").Inc()
		http.Error(w, "forbidden: missing or wrong bearer token", http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		s.metrics.requests.WithLabelValues("413").Inc()
		http.Error(w, fmt.Sprintf("request body larger than %d bytes", s.cfg.MaxBodyBytes), http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		s.metrics.requests.WithLabelValues("400").Inc()
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	args, promote, ours, err := Decode(body)
	if err == nil && ours {
		err = s.validate(promote)
	}
	if err != nil {
		s.metrics.requests.WithLabelValues("400").Inc()
		s.log.Warn("bad request", "error", err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !ours {
		s.metrics.requests.WithLabelValues("200").Inc()
		writeJSON(w, executor.ExecuteTemplateReply{})
		return
	}
	var workflow string
	if args.Workflow != nil {
		workflow = args.Workflow.ObjectMeta.UID
	}
	reply := s.Promote(r.Context(), promote, workflow)
	s.metrics.requests.WithLabelValues("200").Inc()
	writeJSON(w, reply)
}

func (s *Server) validate(a Args) error {
	if err := chartsrepo.ValidateApp(a.App); err != nil {
		return fmt.Errorf("%w: promote.app: %v", ErrBadRequest, err)
	}
	if err := s.cfg.Layout.ValidateEnv(a.From); err != nil {
		return fmt.Errorf("%w: promote.from: %v", ErrBadRequest, err)
	}
	if err := chartsrepo.ValidateTag(a.Tag); err != nil {
		return fmt.Errorf("%w: promote.tag: %v", ErrBadRequest, err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Result is a promotion's outcome before it becomes a reply.
type Result struct {
	Decision promotion.Decision
	Promoted bool
	Commit   string
	Err      error
}

// Promote decides (and performs) one promotion and builds the reply. The
// work runs detached from ctx with its own deadline (Config.Timeout); the
// reply waits for it at most Config.ReplyBudget, then says Running with a
// short requeue. A repeated call for the same workflow, app, environment
// and tag joins the work still running or collects its result.
func (s *Server) Promote(ctx context.Context, a Args, workflow string) executor.ExecuteTemplateReply {
	key := jobKey{workflow: workflow, app: a.App, from: a.From, tag: a.Tag}
	log := s.log.With("app", a.App, "from", a.From, "tag", a.Tag, "workflow", workflow)
	j, started := s.jobs.start(key, func() executor.ExecuteTemplateReply {
		// Detached: the agent hanging up must not cut a push in half.
		jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
		defer cancel()
		return s.promote(jctx, log, a, workflow)
	})
	if !started {
		log.Info("joining the promotion already running")
	}
	budget := time.NewTimer(s.cfg.ReplyBudget)
	defer budget.Stop()
	select {
	case <-j.done:
		return s.jobs.collect(key, j)
	case <-budget.C:
	case <-ctx.Done():
	}
	log.Info("promotion still running; asking the agent to call again", "requeue", progressRequeue.String())
	return executor.ExecuteTemplateReply{
		Node:    &wfv1.NodeResult{Phase: wfv1.NodeRunning, Message: "promotion in progress"},
		Requeue: &metav1.Duration{Duration: progressRequeue},
	}
}

// Drain waits for the promotions still running (after the HTTP server
// stopped taking requests) until ctx is done.
func (s *Server) Drain(ctx context.Context) error { return s.jobs.wait(ctx) }

// promote runs one promotion and builds its reply.
func (s *Server) promote(ctx context.Context, log *slog.Logger, a Args, workflow string) executor.ExecuteTemplateReply {
	started := time.Now()
	log.Debug("promotion started")
	res := s.run(ctx, a, workflow)
	s.metrics.observe(res, time.Since(started))
	reply := s.reply(res)
	attrs := []any{"phase", reply.Node.Phase, "target_env", res.Decision.Target, "reason", reply.Node.Message}
	if res.Commit != "" {
		attrs = append(attrs, "commit", res.Commit)
	}
	if reply.Requeue != nil {
		attrs = append(attrs, "requeue", reply.Requeue.Duration.String())
	}
	if res.Err != nil {
		log.Error("promotion failed", attrs...)
	} else {
		log.Info("promotion decided", attrs...)
	}
	return reply
}

func (s *Server) getWriter() *gitwriter.Writer {
	select {
	case w := <-s.writers:
		return w
	default:
		f := s.cfg.File
		return gitwriter.New(gitwriter.Options{
			URL: s.o.RepoURL, Auth: s.o.Auth, Branch: f.Repo.Branch, Strategy: s.cfg.Strategy,
			AuthorName: f.Git.AuthorName, AuthorEmail: f.Git.AuthorEmail, MaxAttempts: f.Git.MaxAttempts, Log: s.log,
		})
	}
}

func (s *Server) putWriter(w *gitwriter.Writer) {
	select {
	case s.writers <- w:
	default: // enough idle writers kept
	}
}

// run performs one promotion. The decision is promotion.Decide's alone,
// and it is made again on every push attempt against the head that attempt
// would push onto (source, target, clock and, when a soak applies, the
// history at that head): bumptag writes what it allows and decides nothing.
func (s *Server) run(ctx context.Context, a Args, workflow string) Result {
	p := s.cfg.Policy
	req := promotion.Request{App: a.App, From: a.From, Tag: a.Tag}
	target := p.Next(a.From)
	if target == "" {
		return Result{Decision: promotion.Decide(p, req, promotion.State{}, s.o.Now())}
	}
	srcPath, err := s.cfg.Layout.TagFile(a.From, a.App)
	if err != nil {
		return Result{Err: err}
	}
	dstPath, err := s.cfg.Layout.TagFile(target, a.App)
	if err != nil {
		return Result{Err: err}
	}
	writer := s.getWriter()
	defer s.putWriter(writer)
	var d promotion.Decision
	var decided bool
	var gateErr error
	gate := func(at gitwriter.Current) (bool, string, error) {
		d, gateErr = s.decide(ctx, req, srcPath, dstPath, at)
		if gateErr != nil {
			return false, "", gateErr
		}
		decided = true
		return d.Action == promotion.Write, d.Reason, nil
	}
	yes := true
	br, err := bumptag.Run(ctx, bumptag.Config{Layout: s.cfg.Layout, Policy: p.Releases, Writer: writer}, bumptag.Request{
		App: a.App, Env: target, Tag: a.Tag, Promote: &yes, Workflow: workflow, SourceEnv: a.From,
		Message: "Promote {{.App}} {{.Tag}} to {{.Env}}", Gate: gate,
	})
	switch {
	case gateErr != nil:
		return Result{Decision: d, Err: gateErr}
	case err != nil && !decided:
		return Result{Decision: promotion.Decision{Target: target}, Err: fmt.Errorf("read the charts repo: %w", err)}
	case err != nil:
		return Result{Decision: d, Err: fmt.Errorf("write %s: %w", dstPath, err)}
	case br.Changed:
		return Result{Decision: d, Promoted: true, Commit: br.Commit}
	}
	res := Result{Decision: d}
	if d.Action == promotion.Write {
		d.Reason = br.Reason // the file already held it byte for byte
		res.Decision = d
	}
	if d.Rule == 5 && d.Reason == "already there" {
		res.Commit = br.Commit // the head that already has it, as bump-tag reports
	}
	return res
}

// decide reads the source and target tag files at at's head and applies
// promotion.Decide, reading the soak's start from the history at that same
// head when the decision needs it.
func (s *Server) decide(ctx context.Context, req promotion.Request, srcPath, dstPath string, at gitwriter.Current) (promotion.Decision, error) {
	src, err := at.Read(srcPath)
	if err != nil {
		return promotion.Decision{}, fmt.Errorf("read the charts repo: %w", err)
	}
	var st promotion.State
	if st.Source, err = s.parse(srcPath, src); err != nil {
		return promotion.Decision{}, err
	}
	if st.Target, err = s.parse(dstPath, at); err != nil {
		return promotion.Decision{}, err
	}
	now := s.o.Now()
	d := promotion.Decide(s.cfg.Policy, req, st, now)
	if d.Action != promotion.NeedTagSetAt {
		return d, nil
	}
	if st.TagSetAt, err = s.tagSetAt(ctx, at, srcPath, req.Tag); err != nil {
		return d, err
	}
	if d = promotion.Decide(s.cfg.Policy, req, st, now); d.Action == promotion.NeedTagSetAt {
		// Cannot happen: rule 3 passed, so the head itself holds the tag.
		return d, fmt.Errorf("%s: no commit in its history sets %s", srcPath, req.Tag)
	}
	return d, nil
}

func (s *Server) parse(path string, cur gitwriter.Current) (promotion.File, error) {
	if !cur.Exists {
		return promotion.File{}, nil
	}
	f, err := tagfile.Parse(cur.Content, s.cfg.Layout.Keys)
	if err != nil {
		return promotion.File{}, fmt.Errorf("%s: %w", path, err)
	}
	tag, _ := f.Tag()
	return promotion.File{Exists: true, Tag: tag, AutoDeploy: f.AutoDeploy(), Promote: f.Promote()}, nil
}

// tagSetAt walks the source file's history back from at's head and returns
// when the commit that set tag (the oldest of the newest run of versions
// holding it) landed. Read from the head the decision is made on, it holds
// for that head: a source that moved away and back since is a new start.
func (s *Server) tagSetAt(ctx context.Context, at gitwriter.Current, path, tag string) (time.Time, error) {
	var when time.Time
	err := at.History(ctx, path, s.cfg.File.Git.HistoryDepth, func(r gitwriter.Revision) bool {
		f, err := s.parse(path, gitwriter.Current{Content: r.Content, Exists: r.Exists})
		if err != nil || !f.Exists || f.Tag != tag {
			return false
		}
		when = r.When
		return true
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("read the history of %s: %w", path, err)
	}
	return when, nil
}

func (s *Server) reply(res Result) executor.ExecuteTemplateReply {
	if res.Err != nil {
		msg := s.o.Redactor.String(strings.Join(strings.Fields(res.Err.Error()), " "))
		return executor.ExecuteTemplateReply{Node: &wfv1.NodeResult{Phase: wfv1.NodeFailed, Message: msg,
			Outputs: outputs(false, res.Decision.Target, "", msg)}}
	}
	d := res.Decision
	if d.Phase == promotion.Running {
		return executor.ExecuteTemplateReply{
			Node:    &wfv1.NodeResult{Phase: wfv1.NodeRunning, Message: d.Reason},
			Requeue: &metav1.Duration{Duration: d.Requeue},
		}
	}
	return executor.ExecuteTemplateReply{Node: &wfv1.NodeResult{Phase: wfv1.NodeSucceeded, Message: d.Reason,
		Outputs: outputs(res.Promoted, d.Target, res.Commit, d.Reason)}}
}

func outputs(promoted bool, target, commit, reason string) *wfv1.Outputs {
	param := func(name, v string) wfv1.Parameter { return wfv1.Parameter{Name: name, Value: wfv1.AnyStringPtr(v)} }
	return &wfv1.Outputs{Parameters: []wfv1.Parameter{
		param("promoted", fmt.Sprint(promoted)), param("target-env", target),
		param("commit", commit), param("reason", reason),
	}}
}
