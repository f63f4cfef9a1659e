package promoterserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/bumptagcli"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/gitauth"
	"github.com/slipway-deploy/slipway/internal/stepcli"
)

// Step is the promoter command (plugin/main.go runs it).
func Step() stepcli.Step {
	env := stepcli.Env
	return stepcli.Step{
		Name:      "promoter",
		Usage:     "Argo Workflows executor plugin: promote a release safely to the next environment",
		UsageText: "promoter --config promoter.yaml|--config-yaml YAML [--addr :4355] [--token-file /var/run/argo/token] [git auth flags]",
		Description: `Serves Argo's executor-plugin protocol on --addr. For a step
  plugin: {promoter: {promote: {app: A, from: ENV, tag: T}}}
it promotes T to the environment after ENV when ENV still runs T, its flags
allow it, the target runs nothing newer, no freeze is on and the soak time
has passed; it waits (Running, requeued) during freezes and soak.

Endpoints: POST /api/v1/template.execute (bearer token from --token-file),
GET /healthz, GET /metrics (Prometheus). SIGTERM drains in-flight requests.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "addr", Value: ":4355", EnvVars: env("addr"), Usage: "listen address"},
			&cli.StringFlag{Name: "token-file", Value: "/var/run/argo/token", EnvVars: env("token-file"),
				Usage: "the agent's bearer token, checked on every request"},
			&cli.StringFlag{Name: "config", EnvVars: env("config"),
				Usage: "YAML configuration file (see plugin/promoter.example.yaml)"},
			&cli.StringFlag{Name: "config-yaml", EnvVars: env("config-yaml"),
				Usage: "the configuration itself, instead of --config (a plugin sidecar cannot mount volumes: set it from a ConfigMap key)"},
			&cli.DurationFlag{Name: "shutdown-grace", Value: 25 * time.Second, EnvVars: env("shutdown-grace"),
				Usage: "on SIGTERM, how long in-flight requests may finish"},
		}, bumptagcli.GitFlags()...),
		Action: run,
	}
}

func run(ctx context.Context, c *cli.Context, rt *stepcli.Runtime) error {
	var cfg *Config
	var err error
	switch path, inline := c.String("config"), c.String("config-yaml"); {
	case path != "" && inline != "":
		return exitcode.Invalidf("give --config or --config-yaml, not both")
	case path != "":
		cfg, err = LoadConfig(path)
	case inline != "":
		if cfg, err = ParseConfig([]byte(inline)); err != nil {
			err = fmt.Errorf("--config-yaml: %w", err)
		}
	default:
		return exitcode.Invalidf("--config or --config-yaml is required")
	}
	if err != nil {
		return exitcode.AsInvalid(err)
	}
	g := cfg.File.Git
	opts := gitauth.Options{Token: os.Getenv("SLIPWAY_GIT_TOKEN"), TokenFile: g.TokenFile, Username: g.Username,
		SSHKeyFile: g.SSHKeyFile, KnownHosts: g.KnownHosts}
	rt.Redactor.Add(opts.Token)
	for name, dst := range map[string]*string{"git-token-file": &opts.TokenFile, "ssh-key-file": &opts.SSHKeyFile, "known-hosts": &opts.KnownHosts} {
		if c.IsSet(name) {
			*dst = c.String(name)
		}
	}
	if c.IsSet("git-username") || opts.Username == "" {
		opts.Username = c.String("git-username")
	}
	remote, err := gitauth.Resolve(cfg.File.Repo.URL, opts)
	if remote != nil {
		rt.Redactor.Add(remote.Secrets...)
	}
	if err != nil {
		return exitcode.AsInvalid(err)
	}
	srv, err := New(Options{Config: cfg, TokenFile: c.String("token-file"), RepoURL: remote.URL, Auth: remote.Auth,
		Log: rt.Log, Redactor: rt.Redactor})
	if err != nil {
		return exitcode.AsInvalid(err)
	}
	ln, err := net.Listen("tcp", c.String("addr"))
	if err != nil {
		return exitcode.Invalidf("listen on %s: %v", c.String("addr"), err)
	}
	rt.Log.Info("promoter listening", "addr", ln.Addr().String(), "repo", remote.Display, "branch", cfg.File.Repo.Branch)
	grace := c.Duration("shutdown-grace")
	stopped := time.Now()
	err = Serve(ctx, ln, srv.HTTPServer(), grace)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(grace-time.Since(stopped), time.Second))
	defer cancel()
	if derr := srv.Drain(dctx); derr != nil && err == nil {
		err = fmt.Errorf("promotions still running at shutdown: %w", derr)
	}
	if err == nil {
		rt.Log.Info("promoter stopped: in-flight requests finished")
	}
	return err
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
