// Command promoter is the Argo Workflows executor plugin that promotes a
// release to the next environment: the transport is internal/promoterserver,
// the promotion internal/promoter, the rules internal/promotion.
package main

import (
	"context"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/gitauth"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/promoterserver"
	"github.com/slipway-deploy/slipway/internal/stepcli"
)

func main() { stepcli.Run(step()) }

func step() stepcli.Step {
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
GET /healthz, GET /metrics (Prometheus). SIGTERM drains in-flight requests.
A hold in the charts repo's holds file covering the target waits like a freeze.

Commands for people, with the same configuration: plan, hold, unhold.`,
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
		}, gitauth.Flags()...),
		Run: func(ctx context.Context, c *cli.Context, rt *stepcli.Runtime) (outcome.Reporter, error) {
			return promoterserver.Run(ctx, promoterserver.Settings{
				Addr: c.String("addr"), TokenFile: c.String("token-file"), ConfigPath: c.String("config"),
				ConfigYAML: c.String("config-yaml"), ShutdownGrace: c.Duration("shutdown-grace"), Git: gitauth.FromFlags(c),
				Log: rt.Log, Redactor: rt.Redactor,
			})
		},
		Commands: commands(),
	}
}
