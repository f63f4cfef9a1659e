package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/gitauth"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/plan"
	"github.com/slipway-deploy/slipway/internal/promoterserver"
	"github.com/slipway-deploy/slipway/internal/stepcli"
)

// The promoter's commands for people: release control (docs/architecture.md
// rules 12 and 13). Flags and calls only; the logic is promoterserver's.

// configFlags are the plugin's own configuration and git flags, which
// every command reads the charts repo with.
func configFlags(more ...cli.Flag) []cli.Flag {
	env := stepcli.Env
	return append(append([]cli.Flag{
		&cli.StringFlag{Name: "config", EnvVars: env("config"), Usage: "the plugin's YAML configuration file"},
		&cli.StringFlag{Name: "config-yaml", EnvVars: env("config-yaml"), Usage: "the configuration itself, instead of --config"},
	}, more...), gitauth.Flags()...)
}

func command(c *cli.Context, rt *stepcli.Runtime) promoterserver.Command {
	return promoterserver.Command{ConfigPath: c.String("config"), ConfigYAML: c.String("config-yaml"), Git: gitauth.FromFlags(c),
		Log: rt.Log, Redactor: rt.Redactor, Stdout: rt.Stdout}
}

func holdFlags(hold bool) []cli.Flag {
	env := stepcli.Env
	reason := "why the hold is lifted (recorded in the commit)"
	if hold {
		reason = "why, e.g. the incident (required; everyone sees it)"
	}
	flags := configFlags(
		&cli.StringFlag{Name: "env", EnvVars: env("env"), Usage: "environments, comma-separated, or * for all (required)"},
		&cli.StringFlag{Name: "app", EnvVars: env("app"), Usage: "apps, comma-separated (default: all)"},
		&cli.StringFlag{Name: "reason", EnvVars: env("reason"), Usage: reason},
		&cli.StringFlag{Name: "by", EnvVars: env("by"), Usage: "who (default: the user running it)"})
	if hold {
		flags = append(flags, &cli.StringFlag{Name: "until", EnvVars: env("until"), Usage: "lift itself after a duration (2h) or at a time (RFC 3339)"})
	}
	return flags
}

func holdSettings(c *cli.Context, rt *stepcli.Runtime) promoterserver.HoldSettings {
	return promoterserver.HoldSettings{Command: command(c, rt), Envs: c.String("env"), Apps: c.String("app"),
		Reason: c.String("reason"), Until: c.String("until"), By: c.String("by")}
}

func commands() []stepcli.Command {
	env := stepcli.Env
	return []stepcli.Command{{
		Name: "plan", Usage: "what runs where, what the promoter would decide now, and drift",
		UsageText: "promoter plan --config promoter.yaml [--app a,b] [--output text|json|markdown] [--output-file PATH] [--drift 168h] [--fail-on-drift]",
		Flags: configFlags(
			&cli.StringFlag{Name: "app", EnvVars: env("app"), Usage: "only these apps, comma-separated (default: every app)"},
			&cli.StringFlag{Name: "output", Value: "text", EnvVars: env("output"), Usage: "text, json or markdown (for a chat message)"},
			&cli.StringFlag{Name: "output-file", EnvVars: env("output-file"), Usage: "write the plan to this file instead of stdout, whole, once it is made (a plan that fails leaves none)"},
			&cli.DurationFlag{Name: "drift", Value: plan.DefaultDrift, EnvVars: env("drift"), Usage: "behind the environment before for longer than this is drift"},
			&cli.BoolFlag{Name: "fail-on-drift", EnvVars: env("fail-on-drift"), Usage: "exit 1 when there is drift (after printing the plan)"},
			&cli.IntFlag{Name: "history-depth", EnvVars: env("history-depth"), Usage: "commits of history to read (default 0: all, which drift needs)"}),
		Run: func(ctx context.Context, c *cli.Context, rt *stepcli.Runtime) (outcome.Reporter, error) {
			return promoterserver.Plan(ctx, promoterserver.PlanSettings{Command: command(c, rt), Apps: c.String("app"), Output: c.String("output"),
				Drift: c.Duration("drift"), FailOnDrift: c.Bool("fail-on-drift"), HistoryDepth: c.Int("history-depth"),
				OutputFile: c.String("output-file")})
		},
	}, {
		Name: "hold", Usage: "stop the line: add a hold to the holds file (one commit)",
		UsageText: `promoter hold --config promoter.yaml --env production [--app a,b] --reason "INC-1234" [--until 2h|TIME]`,
		Flags:     holdFlags(true),
		Run: func(ctx context.Context, c *cli.Context, rt *stepcli.Runtime) (outcome.Reporter, error) {
			return promoterserver.Hold(ctx, holdSettings(c, rt))
		},
	}, {
		Name: "unhold", Usage: "lift the holds within --env (and --app) from the holds file (one commit)",
		UsageText: `promoter unhold --config promoter.yaml --env production [--app a,b] [--reason "fixed"]`,
		Flags:     holdFlags(false),
		Run: func(ctx context.Context, c *cli.Context, rt *stepcli.Runtime) (outcome.Reporter, error) {
			return promoterserver.Unhold(ctx, holdSettings(c, rt))
		},
	}}
}
