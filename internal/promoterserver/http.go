package promoterserver

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/plugins/executor"
	"github.com/go-git/go-git/v5/plumbing/transport"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/promoter"
	"github.com/slipway-deploy/slipway/internal/redact"
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

// Server serves the executor-plugin protocol in front of a Promoter.
type Server struct {
	cfg      *Config
	log      *slog.Logger
	redactor *redact.Redactor
	metrics  *metrics
	token    tokenFile
	promoter *promoter.Promoter
	jobs     jobs
}

// New returns a Server; it reads the token file at once so that a missing
// one is reported at start-up.
func New(o Options) (*Server, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Redactor == nil {
		o.Redactor = &redact.Redactor{}
	}
	cfg, f := o.Config, o.Config.File
	s := &Server{cfg: cfg, log: o.Log, redactor: o.Redactor, metrics: newMetrics(), token: tokenFile{path: o.TokenFile},
		promoter: promoter.New(promoter.Config{
			Layout: cfg.Layout, Policy: cfg.Policy, HistoryDepth: f.Git.HistoryDepth, Log: o.Log, Now: o.Now,
			Git: gitwriter.Options{URL: o.RepoURL, Auth: o.Auth, Branch: f.Repo.Branch, Strategy: cfg.Strategy,
				AuthorName: f.Git.AuthorName, AuthorEmail: f.Git.AuthorEmail, MaxAttempts: f.Git.MaxAttempts},
		})}
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

// HTTPServer is the plugin's HTTP server, with every timeout set: a client
// that sends its request slowly, or never reads the reply, cannot hold a
// connection. Writes may take the reply budget and some.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      s.cfg.ReplyBudget + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
	}
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
	var req promoter.Request
	if err == nil && ours {
		req, err = s.request(args, promote)
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
	res := s.promote(r.Context(), req)
	s.metrics.requests.WithLabelValues("200").Inc()
	writeJSON(w, reply(res))
}

// request checks a promote step's arguments into a Request: the one place
// the promoter's app, environment and tag are validated.
func (s *Server) request(args executor.ExecuteTemplateArgs, a Args) (promoter.Request, error) {
	var req promoter.Request
	var err error
	if req.App, err = chartsrepo.ParseApp(a.App); err != nil {
		return req, fmt.Errorf("%w: promote.app: %v", ErrBadRequest, err)
	}
	if req.From, err = s.cfg.Layout.ParseEnv(a.From); err != nil {
		return req, fmt.Errorf("%w: promote.from: %v", ErrBadRequest, err)
	}
	if req.Tag, err = chartsrepo.ParseTag(a.Tag); err != nil {
		return req, fmt.Errorf("%w: promote.tag: %v", ErrBadRequest, err)
	}
	if args.Workflow != nil {
		req.Workflow = args.Workflow.ObjectMeta.UID
	}
	return req, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// OutputNames are the outputs of every terminal reply, in reply order: the
// promotion's, then `outcome`, as every step writes it (stepcli's rule).
var OutputNames = append(slices.Clone(promoter.OutputNames), outcomeOutput)

const outcomeOutput = "outcome"

// reply is a promotion's result as the agent reads it: the outcome's
// phase and sentence, a requeue while waiting, the outputs otherwise. The
// outputs carry the outcome's exit code too, as a container step's would:
// a WorkflowTemplate retries this step on exit code 1 only, like every
// other (a plugin node has no exit code of its own).
func reply(res promoter.Result) executor.ExecuteTemplateReply {
	rep := res.Report()
	node := &wfv1.NodeResult{Phase: wfv1.NodePhase(rep.Outcome.Phase()), Message: rep.Reason}
	if rep.Outcome.Waiting() {
		return executor.ExecuteTemplateReply{Node: node, Requeue: &metav1.Duration{Duration: rep.Requeue}}
	}
	values := maps.Clone(rep.Outputs)
	values[outcomeOutput] = rep.Outcome.String()
	exitCode := strconv.Itoa(rep.Outcome.ExitCode())
	node.Outputs = &wfv1.Outputs{ExitCode: &exitCode}
	for _, name := range OutputNames {
		node.Outputs.Parameters = append(node.Outputs.Parameters, wfv1.Parameter{Name: name, Value: wfv1.AnyStringPtr(values[name])})
	}
	return executor.ExecuteTemplateReply{Node: node}
}
