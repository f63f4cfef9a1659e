// Command smoke-test proves a deployment works: it runs declarative HTTP
// checks from a spec (retrying failing ones until a deadline, so a rollout's
// 502s are waited out) and/or an external suite that writes a JUnit report,
// and reports every check like a test suite.
package main

import (
	"context"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/outputs"
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
			&cli.StringFlag{Name: "outputs-dir", EnvVars: env("outputs-dir"), Usage: "write Argo output parameters passed, failed and summary here"},
			&cli.BoolFlag{Name: "dry-run", EnvVars: env("dry-run"), Usage: "validate the spec and flags, list what would run, request nothing"},
		},
		Action: run,
	}
}

func run(ctx context.Context, c *cli.Context, rt *stepcli.Runtime) error {
	plan, err := smoke.Prepare(smoke.Settings{
		SpecFile:      c.String("spec"),
		BaseURL:       c.String("base-url"),
		EnvName:       c.String("env"),
		Tags:          c.StringSlice("tags"),
		SkipTags:      c.StringSlice("skip-tags"),
		BasicAuthFile: c.String("basic-auth-file"),
		SecretVars:    c.StringSlice("secret-vars"),
		CAFile:        c.String("ca-file"),
		Command:       c.String("command"),
		JUnitInput:    c.String("junit-input"),
		Config: smoke.Config{
			Concurrency:    c.Int("concurrency"),
			Deadline:       c.Duration("deadline"),
			RequestTimeout: c.Duration("request-timeout"),
			Log:            rt.Log,
		},
		Secret: rt.Redactor.Add,
	})
	if err != nil {
		return err
	}
	if c.Bool("dry-run") {
		return plan.Describe(rt.Stdout)
	}
	// masked before anything is encoded (JSON, XML escape what the mask looks for)
	outcome := plan.Run(ctx, rt.Stdout, c.App.ErrWriter).Masked(rt.Redactor.String)
	if err := outcome.WriteText(rt.Stdout); err != nil {
		return err
	}
	if err := writeReports(c, rt, outcome); err != nil {
		return err
	}
	if !outcome.OK() {
		return exitcode.Failedf("smoke tests failed: %s", outcome.Summary())
	}
	return nil
}

// writeReports writes the files asked for from the masked outcome; the
// encoded bytes are masked again as a safety net.
func writeReports(c *cli.Context, rt *stepcli.Runtime, o smoke.Outcome) error {
	for _, report := range []struct {
		flag   string
		encode func() ([]byte, error)
	}{{"junit-output", o.JUnitXML}, {"json-output", o.JSON}} {
		path := c.String(report.flag)
		if path == "" {
			continue
		}
		data, err := report.encode()
		if err != nil {
			return err
		}
		if err := smoke.WriteFile(path, rt.Redactor.Bytes(data)); err != nil {
			return err
		}
	}
	t := o.Tally()
	return outputs.Write(c.String("outputs-dir"), map[string]string{
		"passed":  strconv.Itoa(t.Passed),
		"failed":  strconv.Itoa(t.Failed),
		"summary": rt.Redactor.String(o.Summary()),
	})
}
