package promoterserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/gitauth"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/redact"
)

// Settings are the promoter command's flags.
type Settings struct {
	Addr      string
	TokenFile string
	// ConfigPath or ConfigYAML (one of them) is the configuration.
	ConfigPath, ConfigYAML string
	ShutdownGrace          time.Duration
	// Git are the git auth flags (gitauth.FromFlags), laid over the
	// configuration's git settings.
	Git      gitauth.Options
	Log      *slog.Logger
	Redactor *redact.Redactor
}

// Run serves the plugin on st.Addr until ctx is done (SIGTERM), then lets
// the requests and promotions in flight finish for up to st.ShutdownGrace.
func Run(ctx context.Context, st Settings) (outcome.Result, error) {
	if st.Log == nil {
		st.Log = slog.New(slog.DiscardHandler)
	}
	if st.Redactor == nil {
		st.Redactor = &redact.Redactor{}
	}
	cfg, remote, err := open(st.ConfigPath, st.ConfigYAML, st.Git, st.Redactor)
	if err != nil {
		return outcome.Result{}, err
	}
	srv, err := New(Options{Config: cfg, TokenFile: st.TokenFile, RepoURL: remote.URL, Auth: remote.Auth,
		Log: st.Log, Redactor: st.Redactor})
	if err != nil {
		return outcome.Result{}, exitcode.AsInvalid(err)
	}
	ln, err := net.Listen("tcp", st.Addr)
	if err != nil {
		return outcome.Result{}, exitcode.Invalidf("listen on %s: %v", st.Addr, err)
	}
	st.Log.Info("promoter listening", "addr", ln.Addr().String(), "repo", remote.Display, "branch", cfg.File.Repo.Branch)
	stopped := time.Now()
	err = Serve(ctx, ln, srv.HTTPServer(), st.ShutdownGrace)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(st.ShutdownGrace-time.Since(stopped), time.Second))
	defer cancel()
	if derr := srv.Drain(dctx); derr != nil && err == nil {
		err = fmt.Errorf("promotions still running at shutdown: %w", derr)
	}
	if err != nil {
		return outcome.Result{}, err
	}
	return outcome.Result{Outcome: outcome.Stopped, Reason: "promoter stopped: in-flight requests finished"}, nil
}

// open reads the configuration (a file or the YAML itself) and resolves
// the charts repo's remote, the flags laid over the configuration's git
// settings: for the server and every command alike.
func open(path, yaml string, git gitauth.Options, red *redact.Redactor) (*Config, *gitauth.Remote, error) {
	var cfg *Config
	var err error
	switch {
	case path != "" && yaml != "":
		return nil, nil, exitcode.Invalidf("give --config or --config-yaml, not both")
	case path != "":
		cfg, err = LoadConfig(path)
	case yaml != "":
		if cfg, err = ParseConfig([]byte(yaml)); err != nil {
			err = fmt.Errorf("--config-yaml: %w", err)
		}
	default:
		return nil, nil, exitcode.Invalidf("--config or --config-yaml is required")
	}
	if err != nil {
		return nil, nil, exitcode.AsInvalid(err)
	}
	remote, err := gitauth.Open(cfg.File.Repo.URL, git.Over(cfg.GitAuth()), red)
	if err != nil {
		return nil, nil, err
	}
	return cfg, remote, nil
}

// Serve serves hs on ln until ctx is done, then stops taking connections
// and lets in-flight requests finish for up to grace.
func Serve(ctx context.Context, ln net.Listener, hs *http.Server, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
