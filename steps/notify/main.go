// Command notify posts how a deployment went to Slack: deployed, promoted
// to the next environment, not promoted and why, failed and where, or a
// failed sync, with links to the workflow, the changes and Argo CD; or a
// report (the release plan's markdown) under a title.
package main

import (
	"context"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/notify"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/slack"
	"github.com/slipway-deploy/slipway/internal/stepcli"
)

func main() { stepcli.Run(step()) }

func step() stepcli.Step {
	str := func(name, usage string) cli.Flag {
		return &cli.StringFlag{Name: name, EnvVars: stepcli.Env(name), Usage: usage}
	}
	return stepcli.Step{
		Name:  "notify",
		Usage: "post a deployment's result to a Slack incoming webhook",
		UsageText: "notify --app NAME --env ENV --tag TAG --status Succeeded|Failed|Error|SyncFailed [--reason TEXT [--reason-encoding text|base64]] [flags]\n" +
			"notify --report-file PATH --title TEXT [--report-encoding text|base64] [--post-empty] [--reason TEXT [--reason-encoding text|base64]] [flags]",
		Description: "The webhook URL comes from --webhook-url-file or " + notify.WebhookEnv + " and is never printed.\n" +
			"429 (after Retry-After) and 5xx are retried until --timeout. Exit 0 posted (or an empty report, nothing to post),\n" +
			"1 failed (a retry may help), 2 invalid input or a reply no retry fixes (bad payload, no such webhook).",
		Flags: []cli.Flag{
			str("webhook-url-file", "file holding the Slack incoming webhook URL (else "+notify.WebhookEnv+")"),
			str("app", "the app deployed"),
			str("env", "the environment it was deployed to (or whose sync failed)"),
			str("tag", "the image tag deployed"),
			str("previous-tag", "the tag it replaced"),
			str("status", "Succeeded, Failed or Error ({{workflow.status}}), or SyncFailed (an Argo CD SyncFail hook)"),
			str("promoted", "the promoter's `promoted` output: true, false or empty (the promoter did not run)"),
			str("outcome", "the promoter's (or a step's) `outcome` output, e.g. promoted, stale, newer-present"),
			str("target-env", "the environment promoted to, or not (the promoter's `target-env`)"),
			str("reason", "why, in a sentence: the promoter's `reason`, or e.g. \"approval timed out\""),
			str("reason-encoding", "--reason's encoding: text (default) or base64 (how a workflow passes outside text)"),
			str("failed-step", "the step a failed workflow failed at"),
			str("workflow-url", "link to the workflow in Argo Workflows"),
			str("compare-url", "link to the git host's comparison of --previous-tag and --tag"),
			str("argocd-url", "link to the app in Argo CD"),
			str("channel", "post to this channel instead of the webhook's own (#name, where the webhook allows it)"),
			str("report-file", "post this file's Slack mrkdwn (promoter plan --output markdown) instead of a deployment's status"),
			str("report-encoding", "the report file's encoding: text (default) or base64 (how a workflow passes outside text)"),
			str("title", "the report's headline (required with --report-file)"),
			&cli.BoolFlag{Name: "post-empty", EnvVars: stepcli.Env("post-empty"), Usage: "post a report that is empty too (default: post nothing, exit 0)"},
			&cli.BoolFlag{Name: "dry-run", EnvVars: stepcli.Env("dry-run"), Usage: "print the payload, post nothing"},
			&cli.DurationFlag{Name: "timeout", Value: slack.DefaultTimeout, EnvVars: stepcli.Env("timeout"), Usage: "deadline of the post, retries and waits included"},
			&cli.IntFlag{Name: "max-attempts", Value: slack.DefaultMaxAttempts, EnvVars: stepcli.Env("max-attempts"), Usage: "requests at most"},
			&cli.DurationFlag{Name: "retry-wait", Value: slack.DefaultRetryWait, EnvVars: stepcli.Env("retry-wait"), Usage: "first wait between attempts (doubling, jittered) when Slack gives no Retry-After"},
		},
		Run: func(ctx context.Context, c *cli.Context, rt *stepcli.Runtime) (outcome.Reporter, error) {
			return notify.Run(ctx, notify.Config{
				WebhookURLFile: c.String("webhook-url-file"), WebhookURL: os.Getenv(notify.WebhookEnv),
				App: c.String("app"), Env: c.String("env"), Tag: c.String("tag"), PreviousTag: c.String("previous-tag"),
				Status: c.String("status"), Promoted: c.String("promoted"), Outcome: c.String("outcome"),
				TargetEnv: c.String("target-env"), Reason: c.String("reason"), ReasonEncoding: c.String("reason-encoding"),
				FailedStep: c.String("failed-step"), WorkflowURL: c.String("workflow-url"), CompareURL: c.String("compare-url"),
				ArgoCDURL: c.String("argocd-url"), Channel: c.String("channel"), DryRun: c.Bool("dry-run"),
				ReportFile: c.String("report-file"), ReportEncoding: c.String("report-encoding"), Title: c.String("title"), PostEmpty: c.Bool("post-empty"),
				Timeout: c.Duration("timeout"), MaxAttempts: c.Int("max-attempts"), RetryWait: c.Duration("retry-wait"),
				Log: rt.Log, Redactor: rt.Redactor, Stdout: rt.Stdout,
			})
		},
	}
}
