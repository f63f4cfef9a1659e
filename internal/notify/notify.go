// Package notify tells a Slack channel how a deployment went: deployed,
// promoted to the next environment, not promoted and why, failed and at
// which step, or a failed sync; or posts a report another step wrote (the
// release plan) under a title. It checks its inputs, composes one Block
// Kit message whose headline says what happened, and posts it to an
// incoming webhook (internal/slack), whose URL is a secret.
package notify

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/redact"
	"github.com/slipway-deploy/slipway/internal/slack"
)

// Config is what the notify step is given.
type Config struct {
	// WebhookURLFile is a file holding the webhook URL; WebhookURL is the
	// URL itself, from the environment (WebhookEnv). One of them, except
	// for a dry run.
	WebhookURLFile, WebhookURL string

	App, Env, Tag, PreviousTag string
	Status                     string // Succeeded, Failed, Error or SyncFailed
	// What the promoter (or a step) said: Promoted is its `promoted`
	// output (true, false or ""), Outcome its `outcome` output, Reason
	// the sentence a person reads.
	Promoted, Outcome, TargetEnv, Reason string
	// ReasonEncoding is Reason's: text ("" too) or base64, how a workflow
	// passes outside text past Argo's second substitution of a pod's spec.
	ReasonEncoding string
	FailedStep     string // where a failed run failed

	WorkflowURL, CompareURL, ArgoCDURL string
	Channel                            string

	// A report instead of a deployment's facts: ReportFile holds Slack
	// mrkdwn text (base64 when ReportEncoding says so), posted under Title
	// (with Reason, WorkflowURL and Channel). An empty report posts
	// nothing unless PostEmpty.
	ReportFile, ReportEncoding, Title string
	PostEmpty                         bool

	// DryRun prints the payload to Stdout and posts nothing.
	DryRun bool

	Timeout     time.Duration // deadline of the post, retries included
	MaxAttempts int
	RetryWait   time.Duration // first wait between attempts

	Log      *slog.Logger
	Redactor *redact.Redactor // the webhook URL is registered here
	Stdout   io.Writer
	// HTTP sends the post; nil: one that follows no redirect.
	HTTP *http.Client
}

// Result is what was said, and whether it was posted.
type Result struct {
	Kind     Kind
	Headline string
	App, Env string
	Tag      string
	Status   Status
	DryRun   bool
	Attempts int // requests made
	// A report's lines, and those the message shows; Skipped: the report
	// was empty and nothing was posted.
	Lines, Shown int
	Skipped      bool
}

// Report is the step's result: notified, with the headline; or nothing
// to report.
func (r Result) Report() outcome.Result {
	reason := "posted to Slack: " + r.Headline
	if r.DryRun {
		reason = "dry run, nothing posted: " + r.Headline
	}
	if r.Kind != KindReport {
		return outcome.Result{Outcome: outcome.Notified, Reason: reason, Attrs: []any{
			"app", r.App, "env", r.Env, "tag", r.Tag, "status", string(r.Status),
			"message", r.Kind.String(), "attempts", r.Attempts}}
	}
	attrs := []any{"title", r.Headline, "message", r.Kind.String(), "lines", r.Lines, "shown", r.Shown, "attempts", r.Attempts}
	if r.Skipped {
		return outcome.Result{Outcome: outcome.NothingToReport, Reason: "nothing posted: the report is empty", Attrs: attrs}
	}
	return outcome.Result{Outcome: outcome.Notified, Reason: reason, Attrs: attrs}
}

// Run checks cfg, composes the message and posts it (or prints it for a
// dry run).
func Run(ctx context.Context, cfg Config) (Result, error) {
	red := cfg.Redactor
	if red == nil {
		red = &redact.Redactor{}
	}
	// First: the URL is a secret from here on, whatever fails next.
	webhook, err := webhookURL(cfg, red)
	if err != nil {
		return Result{}, err
	}
	if err := checkRetries(cfg); err != nil {
		return Result{}, err
	}
	msg, res, err := compose(cfg)
	if err != nil {
		return Result{}, err
	}
	if webhook == "" && !cfg.DryRun {
		return Result{}, exitcode.Invalidf("no webhook URL: give --webhook-url-file or %s", WebhookEnv)
	}
	if res.Skipped {
		return res, nil
	}
	payload, err := encode(msg)
	if err != nil {
		return res, fmt.Errorf("encode the message: %w", err)
	}
	if cfg.DryRun {
		out := cfg.Stdout
		if out == nil {
			out = io.Discard
		}
		if _, err := out.Write(payload); err != nil {
			return res, fmt.Errorf("print the payload: %w", err)
		}
		return res, nil
	}
	hook := &slack.Webhook{URL: webhook, HTTP: cfg.HTTP, Timeout: cfg.Timeout, MaxAttempts: cfg.MaxAttempts,
		RetryWait: cfg.RetryWait, Mask: red.String, Log: cfg.Log}
	res.Attempts, err = hook.Post(ctx, payload)
	return res, err
}

// compose checks cfg and makes the message: a report's, or a
// deployment's.
func compose(cfg Config) (slack.Message, Result, error) {
	if cfg.ReportFile != "" {
		r, err := readReport(cfg)
		if err != nil {
			return slack.Message{}, Result{}, err
		}
		msg, shown := r.message()
		return msg, Result{Kind: KindReport, Headline: r.title, DryRun: cfg.DryRun, Lines: len(r.lines), Shown: shown,
			Skipped: len(r.lines) == 0 && !cfg.PostEmpty}, nil
	}
	ev, err := read(cfg)
	if err != nil {
		return slack.Message{}, Result{}, err
	}
	k := ev.kind()
	return ev.message(k), Result{Kind: k, Headline: ev.headline(k), App: ev.app, Env: ev.env, Tag: ev.tag,
		Status: ev.status, DryRun: cfg.DryRun}, nil
}

func checkRetries(cfg Config) error {
	switch {
	case cfg.Timeout < 0:
		return exitcode.Invalidf("--timeout %s: want a positive duration", cfg.Timeout)
	case cfg.MaxAttempts < 0:
		return exitcode.Invalidf("--max-attempts %d: want at least 1", cfg.MaxAttempts)
	case cfg.RetryWait < 0:
		return exitcode.Invalidf("--retry-wait %s: want a positive duration", cfg.RetryWait)
	}
	return nil
}
