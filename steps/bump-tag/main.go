// Command bump-tag writes an image tag into an environment's tag file in the
// charts repo and pushes it, safely under concurrent writers.
package main

import (
	"context"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/bumptag"
	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/gitauth"
	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/release"
	"github.com/slipway-deploy/slipway/internal/stepcli"
)

func main() { stepcli.Run(step()) }

func step() stepcli.Step {
	env := stepcli.Env
	return stepcli.Step{
		Name:      "bump-tag",
		Usage:     "write an image tag into an environment's tag file in the charts repo and push it",
		UsageText: "bump-tag --repo URL --app NAME --env ENV --tag TAG [flags]",
		Description: `Sets image_tag (and promote_deployment) in the tag file of one app in one
environment, keeping every other byte of the file, and pushes the commit.
When another writer pushed first, it re-reads the branch and re-applies the
edit (bounded by --max-attempts). Re-running with the same inputs does nothing.
An older release never replaces a newer one unless --allow-downgrade is given
(a rollback, recorded). A hold covering the app in the environment refuses the
write unless --override-hold gives a reason. The HTTPS token comes from
--git-token-file or SLIPWAY_GIT_TOKEN.
Exit codes: 0 done or nothing to do, 1 failed (a retry may help),
2 invalid input, 3 held, or --expect-current did not hold.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "repo", Required: true, EnvVars: env("repo"), Usage: "charts repo: https://, ssh://, file:// URL or a path"},
			&cli.StringFlag{Name: "branch", Value: "main", EnvVars: env("branch"), Usage: "branch to update"},
			&cli.StringFlag{Name: "app", Required: true, EnvVars: env("app"), Usage: "app name, e.g. frontend"},
			&cli.StringFlag{Name: "env", Required: true, EnvVars: env("env"), Usage: "environment, one of --environments"},
			&cli.StringFlag{Name: "tag", Required: true, EnvVars: env("tag"), Usage: "image tag to deploy, e.g. v42"},
			&cli.StringFlag{Name: "environments", Value: chartsrepo.DefaultChain, EnvVars: env("environments"), Usage: "the environment chain, in promotion order"},
			&cli.StringFlag{Name: "path-template", Value: chartsrepo.DefaultPathTemplate, EnvVars: env("path-template"), Usage: "tag file path in the repo"},
			&cli.StringFlag{Name: "release-pattern", Value: release.DefaultPattern, EnvVars: env("release-pattern"), Usage: "regexp of release (promotable) tags"},
			&cli.StringFlag{Name: "promote-deployment", EnvVars: env("promote-deployment"),
				Usage: "true or false (default: true when --tag matches --release-pattern)"},
			&cli.BoolFlag{Name: "allow-downgrade", EnvVars: env("allow-downgrade"), Usage: "allow an older release over a newer one (a rollback)"},
			&cli.StringFlag{Name: "holds-file", Value: chartsrepo.DefaultHoldsFile, EnvVars: env("holds-file"), Usage: "holds file in the repo (a hold stops the write)"},
			&cli.StringFlag{Name: "override-hold", EnvVars: env("override-hold"), Usage: "write through a hold: why (recorded in the commit with the hold)"},
			&cli.StringFlag{Name: "expect-current", EnvVars: env("expect-current"), Usage: "only write if the file holds this tag now (compare-and-swap)"},
			&cli.BoolFlag{Name: "create", EnvVars: env("create"), Usage: "create the tag file if it does not exist"},
			&cli.StringFlag{Name: "strategy", Value: string(gitwriter.Direct), EnvVars: env("strategy"),
				Usage: "direct: push to --branch; branch: push update-image-tag/<app>/<env>/<tag>, merge it, delete it"},
			&cli.IntFlag{Name: "max-attempts", Value: gitwriter.DefaultMaxAttempts, EnvVars: env("max-attempts"), Usage: "push attempts when other writers race us"},
			&cli.BoolFlag{Name: "dry-run", EnvVars: env("dry-run"), Usage: "print the diff and commit message; push nothing"},
			&cli.StringFlag{Name: "outputs-dir", EnvVars: env("outputs-dir"), Usage: "write Argo outputs changed, commit, previous-tag, reason, outcome here"},
			&cli.StringFlag{Name: "author-name", Value: "Slipway", EnvVars: env("author-name"), Usage: "commit author name"},
			&cli.StringFlag{Name: "author-email", Value: "slipway@localhost", EnvVars: env("author-email"), Usage: "commit author email"},
			&cli.StringFlag{Name: "message", Value: bumptag.DefaultMessage, EnvVars: env("message"), Usage: "commit message template (fields .App .Env .Tag .PreviousTag .Workflow)"},
			&cli.StringFlag{Name: "workflow", EnvVars: append(env("workflow"), "ARGO_WORKFLOW_UID"), Usage: "Argo workflow UID, recorded in the commit"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, EnvVars: env("timeout"), Usage: "give up after this long"},
		}, gitauth.Flags()...),
		Outputs: bumptag.OutputNames,
		Run: func(ctx context.Context, c *cli.Context, rt *stepcli.Runtime) (outcome.Reporter, error) {
			return bumptag.Run(ctx, bumptag.Config{
				Repo: c.String("repo"), Branch: c.String("branch"), Strategy: c.String("strategy"), Git: gitauth.FromFlags(c),
				App: c.String("app"), Env: c.String("env"), Tag: c.String("tag"), HoldsFile: c.String("holds-file"),
				Environments: c.String("environments"), PathTemplate: c.String("path-template"), ReleasePattern: c.String("release-pattern"),
				PromoteDeployment: c.String("promote-deployment"), AllowDowngrade: c.Bool("allow-downgrade"),
				ExpectCurrent: c.String("expect-current"), Create: c.Bool("create"), DryRun: c.Bool("dry-run"),
				MaxAttempts: c.Int("max-attempts"), AuthorName: c.String("author-name"), AuthorEmail: c.String("author-email"),
				Message: c.String("message"), Workflow: c.String("workflow"), Timeout: c.Duration("timeout"),
				OverrideHold: c.String("override-hold"), Log: rt.Log, Redactor: rt.Redactor, Stdout: rt.Stdout,
			})
		},
	}
}
