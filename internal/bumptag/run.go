package bumptag

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/gitauth"
	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/redact"
	"github.com/slipway-deploy/slipway/internal/release"
	"github.com/slipway-deploy/slipway/internal/tagfile"
)

// Config is one bump-tag run as its flags give it, unchecked: Run checks it.
type Config struct {
	Repo, Branch, Strategy         string
	Git                            gitauth.Options
	App, Env, Tag                  string
	Environments, PathTemplate     string
	HoldsFile, OverrideHold        string
	ReleasePattern                 string
	PromoteDeployment              string // "true", "false" or "" (by the release pattern)
	AllowDowngrade, Create, DryRun bool
	ExpectCurrent                  string
	MaxAttempts                    int
	AuthorName, AuthorEmail        string
	Message, Workflow              string
	Timeout                        time.Duration

	Log      *slog.Logger
	Redactor *redact.Redactor
	// Stdout takes a dry run's diff and commit message.
	Stdout io.Writer
}

// Run is the bump-tag step: it checks cfg, every input before the network,
// then writes the tag (or, on a dry run, prints the diff to cfg.Stdout).
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.defaults()
	remote, err := gitauth.Open(cfg.Repo, cfg.Git, cfg.Redactor)
	if err != nil {
		return Result{}, err
	}
	layout, err := chartsrepo.NewLayout(cfg.PathTemplate, cfg.Environments, tagfile.DefaultKeys)
	if err == nil {
		err = layout.SetHoldsFile(cfg.HoldsFile)
	}
	if err != nil {
		return Result{}, exitcode.AsInvalid(err)
	}
	policy, err := release.NewPolicy(cfg.ReleasePattern)
	if err != nil {
		return Result{}, exitcode.AsInvalid(err)
	}
	req, err := cfg.request(layout)
	if err != nil {
		return Result{}, err
	}
	strategy := gitwriter.Strategy(cfg.Strategy)
	if strategy != gitwriter.Direct && strategy != gitwriter.Branch {
		return Result{}, exitcode.Invalidf("--strategy %q: want direct or branch", strategy)
	}
	if cfg.MaxAttempts < 1 {
		return Result{}, exitcode.Invalidf("--max-attempts must be at least 1")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	writer := gitwriter.New(gitwriter.Options{
		URL: remote.URL, Auth: remote.Auth, Branch: cfg.Branch, Strategy: strategy,
		AuthorName: cfg.AuthorName, AuthorEmail: cfg.AuthorEmail, MaxAttempts: cfg.MaxAttempts, Log: cfg.Log,
	})
	cfg.Log.Debug("bumping tag", "app", req.App.String(), "env", req.Env.String(), "tag", req.Tag.String(),
		"repo", remote.Display, "branch", cfg.Branch)
	res, err := Write(ctx, Charts{Layout: layout, Policy: policy, Writer: writer}, req)
	if err == nil && req.DryRun {
		printDryRun(cfg.Stdout, res)
	}
	return res, err
}

// defaults fills what a caller may leave out (the flags give the rest).
func (cfg *Config) defaults() {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Redactor == nil {
		cfg.Redactor = &redact.Redactor{}
	}
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
}

// request checks the names, flags and template into a Request: the one
// place bump-tag's inputs are validated.
func (cfg *Config) request(layout *chartsrepo.Layout) (Request, error) {
	req := Request{AllowDowngrade: cfg.AllowDowngrade, Create: cfg.Create, Workflow: cfg.Workflow, DryRun: cfg.DryRun,
		OverrideHold: strings.TrimSpace(cfg.OverrideHold)}
	if cfg.OverrideHold != "" && req.OverrideHold == "" {
		return req, exitcode.Invalidf("--override-hold needs a reason, recorded in the commit")
	}
	var err error
	if req.App, err = chartsrepo.ParseApp(cfg.App); err != nil {
		return req, exitcode.AsInvalid(err)
	}
	if req.Env, err = layout.ParseEnv(cfg.Env); err != nil {
		return req, exitcode.AsInvalid(err)
	}
	if req.Tag, err = chartsrepo.ParseTag(cfg.Tag); err != nil {
		return req, exitcode.AsInvalid(err)
	}
	if cfg.ExpectCurrent != "" {
		if req.ExpectCurrent, err = chartsrepo.ParseTag(cfg.ExpectCurrent); err != nil {
			return req, exitcode.AsInvalid(fmt.Errorf("--expect-current: %w", err))
		}
	}
	if v := cfg.PromoteDeployment; v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return req, exitcode.Invalidf("--promote-deployment %q: want true or false", v)
		}
		req.Promote = &b
	}
	if req.Message, err = ParseMessage(cfg.Message); err != nil {
		return req, err
	}
	return req, nil
}

// printDryRun shows what a dry run would have written.
func printDryRun(w io.Writer, res Result) {
	if res.Diff == "" {
		fmt.Fprintf(w, "no change: %s\n", res.Reason)
		return
	}
	fmt.Fprintf(w, "%s\n%s", res.Diff, indent(res.Message))
}

// indent shows a commit message the way git log does.
func indent(msg string) string {
	var b strings.Builder
	b.WriteString("commit message:\n")
	for _, line := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	return b.String()
}
