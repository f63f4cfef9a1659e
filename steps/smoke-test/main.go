// Command smoke-test proves a deployment works: it runs declarative HTTP
// checks from a spec (retrying failing ones until a deadline, so a rollout's
// 502s are waited out) and/or an external suite that writes a JUnit report,
// and reports every check like a test suite.
package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/smoke"
	"github.com/slipway-deploy/slipway/internal/stepcli"
)

func main() { stepcli.Run(step()) }

func step() stepcli.Step {
	env := stepcli.Env
	return stepcli.Step{
		Name:  "smoke-test",
		Usage: "prove a deployment works: HTTP checks retried until a deadline, and/or an external suite's JUnit report",
		UsageText: "smoke-test --spec checks.yaml --base-url URL [--tags @app-frontend] [--skip-tags @not-production] [flags]\n" +
			"smoke-test --command \"npx playwright test --grep @app-frontend\" --junit-input results.xml [flags]",
		Description: "Exit 0 when every check and test passed, 1 when one failed (a retry may help), 2 for an invalid spec or flags.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "spec", EnvVars: env("spec"), Usage: "YAML spec of HTTP checks (see README)"},
			&cli.StringFlag{Name: "base-url", EnvVars: env("base-url"), Usage: "URL each check's path is appended to, e.g. https://www.integration.example"},
			&cli.StringFlag{Name: "env", EnvVars: env("env"), Usage: "environment name, exposed to the spec as ${ENV}"},
			&cli.StringSliceFlag{Name: "tags", EnvVars: env("tags"), Usage: "run only checks with any of these tags (comma-separated or repeated; @ optional)"},
			&cli.StringSliceFlag{Name: "skip-tags", EnvVars: env("skip-tags"), Usage: "leave out checks with any of these tags"},
			&cli.DurationFlag{Name: "deadline", Value: smoke.DefaultDeadline, EnvVars: env("deadline"), Usage: "keep retrying failing checks until this much time has passed"},
			&cli.DurationFlag{Name: "request-timeout", Value: smoke.DefaultRequestTimeout, EnvVars: env("request-timeout"), Usage: "time limit of one request, body included"},
			&cli.IntFlag{Name: "concurrency", Value: smoke.DefaultConcurrency, EnvVars: env("concurrency"), Usage: "requests in flight at once"},
			&cli.StringFlag{Name: "basic-auth-file", EnvVars: env("basic-auth-file"), Usage: "file holding user:password, sent as basic auth to --base-url's scheme, host and port only (redirects elsewhere go without)"},
			&cli.StringSliceFlag{Name: "secret-vars", EnvVars: env("secret-vars"), Usage: "${VAR}s of the spec whose values are masked in all output, besides those named *KEY*, *TOKEN*, *SECRET* or *PASSWORD*"},
			&cli.StringFlag{Name: "ca-file", EnvVars: env("ca-file"), Usage: "PEM CA certificate(s) trusted besides the system's"},
			&cli.StringFlag{Name: "command", EnvVars: env("command"), Usage: "external suite to run with sh -c (after the spec's checks); its output is streamed"},
			&cli.StringFlag{Name: "junit-input", EnvVars: env("junit-input"), Usage: "JUnit report --command writes, read when it ends"},
			&cli.StringFlag{Name: "junit-output", EnvVars: env("junit-output"), Usage: "write the result as a JUnit report here"},
			&cli.StringFlag{Name: "json-output", EnvVars: env("json-output"), Usage: "write the result as JSON here"},
			&cli.StringFlag{Name: "outputs-dir", EnvVars: env("outputs-dir"), Usage: "write Argo output parameters outcome, passed, failed and summary here"},
			&cli.BoolFlag{Name: "dry-run", EnvVars: env("dry-run"), Usage: "validate the spec and flags, list what would run, request nothing"},
		},
		Outputs: smoke.Outputs,
		Run:     run,
	}
}

func run(ctx context.Context, c *cli.Context, rt *stepcli.Runtime) (outcome.Reporter, error) {
	return smoke.Run(ctx, smoke.Config{
		SpecFile: c.String("spec"), BaseURL: c.String("base-url"), EnvName: c.String("env"),
		Tags: c.StringSlice("tags"), SkipTags: c.StringSlice("skip-tags"),
		BasicAuthFile: c.String("basic-auth-file"), SecretVars: c.StringSlice("secret-vars"), CAFile: c.String("ca-file"),
		Command: c.String("command"), JUnitInput: c.String("junit-input"),
		Concurrency: c.Int("concurrency"), Deadline: c.Duration("deadline"), RequestTimeout: c.Duration("request-timeout"),
		JUnitOutput: c.String("junit-output"), JSONOutput: c.String("json-output"), DryRun: c.Bool("dry-run"),
		Secret: rt.Redactor.Add, Mask: rt.Redactor.String, Stdout: rt.Stdout, Stderr: rt.Stderr, Log: rt.Log,
	})
}
