// Command precompile-assets optionally runs an app's asset build, then
// publishes the asset tree to S3 (or a local folder): unchanged objects are
// skipped, manifests go last, nothing is deleted.
package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/slipway-deploy/slipway/internal/assetpublish"
	"github.com/slipway-deploy/slipway/internal/assets"
	"github.com/slipway-deploy/slipway/internal/assetstore"
	"github.com/slipway-deploy/slipway/internal/outcome"
	"github.com/slipway-deploy/slipway/internal/stepcli"
)

// defaultConcurrency was chosen from hack/bench-precompile-assets.sh (docs/benchmarks.md).
const defaultConcurrency = 32

func main() { stepcli.Run(step()) }

func step() stepcli.Step {
	return stepcli.Step{
		Name:  "precompile-assets",
		Usage: "run an app's asset build, then publish its assets to S3 or a local folder",
		UsageText: "precompile-assets --app NAME --destination s3://BUCKET/PREFIX|file:///DIR [flags]\n\n" +
			"Uploads every file under --source-dir whose content is not already at the destination,\n" +
			"manifests last, and never deletes anything there. Credentials come from the standard\n" +
			"AWS chain (AWS_* environment, shared config, web identity). Without --destination the\n" +
			"assets go to file:///tmp/slipway-assets/NAME.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "app", Required: true, EnvVars: stepcli.Env("app"), Usage: "app `NAME` (lowercase)"},
			&cli.StringFlag{Name: "source-dir", EnvVars: stepcli.Env("source-dir"), Usage: "asset tree to publish (default: public/assets/NAME)"},
			&cli.StringFlag{Name: "command", EnvVars: stepcli.Env("command"), Usage: "asset build to run first with sh -c, e.g. 'bundle exec rails assets:precompile'; its output is streamed and a non-zero exit fails the step"},
			&cli.StringFlag{Name: "destination", EnvVars: stepcli.Env("destination"), Usage: "s3://BUCKET/PREFIX or file:///DIR (default: file:///tmp/slipway-assets/NAME)"},
			&cli.StringFlag{Name: "endpoint-url", EnvVars: stepcli.Env("endpoint-url"), Usage: "S3 endpoint `URL` for S3-compatible services (default: AWS)"},
			&cli.StringFlag{Name: "region", EnvVars: stepcli.Env("region"), Usage: "S3 region (default: from the AWS chain, then us-east-1)"},
			&cli.BoolFlag{Name: "path-style", EnvVars: stepcli.Env("path-style"), Usage: "address the bucket in the path (http://host/bucket/key), as most S3-compatible services want"},
			&cli.IntFlag{Name: "concurrency", Value: defaultConcurrency, EnvVars: stepcli.Env("concurrency"), Usage: "objects uploaded at the same time"},
			&cli.IntFlag{Name: "max-attempts", Value: 10, EnvVars: stepcli.Env("max-attempts"), Usage: "attempts per S3 request, retried on throttling, 5xx and dropped connections (adaptive mode)"},
			&cli.StringFlag{Name: "cache-control", Value: "public, max-age=31536000, immutable", EnvVars: stepcli.Env("cache-control"), Usage: "Cache-Control of fingerprinted files (a content hash in the name)"},
			&cli.StringFlag{Name: "cache-control-unfingerprinted", Value: "public, max-age=300", EnvVars: stepcli.Env("cache-control-unfingerprinted"), Usage: "Cache-Control of other files, manifests included"},
			&cli.StringFlag{Name: "manifest-pattern", Value: assets.DefaultManifestPatterns, EnvVars: stepcli.Env("manifest-pattern"), Usage: "comma-separated globs of manifest file names, uploaded after every other file"},
			&cli.BoolFlag{Name: "encoding-siblings", EnvVars: stepcli.Env("encoding-siblings"), Usage: "upload x.js.gz / x.js.br next to x.js with Content-Encoding gzip / br and x.js's type"},
			&cli.BoolFlag{Name: "dry-run", EnvVars: stepcli.Env("dry-run"), Usage: "list what would be uploaded; write nothing"},
			&cli.StringFlag{Name: "outputs-dir", EnvVars: stepcli.Env("outputs-dir"), Usage: "write Argo outputs outcome, uploaded, skipped and bytes into `DIR`"},
		},
		Outputs: assetpublish.Outputs,
		Run:     run,
	}
}

func run(ctx context.Context, c *cli.Context, rt *stepcli.Runtime) (outcome.Reporter, error) {
	return assetpublish.Run(ctx, assetpublish.Config{
		App: c.String("app"), SourceDir: c.String("source-dir"), Command: c.String("command"), Destination: c.String("destination"),
		Store: assetstore.Options{Region: c.String("region"), EndpointURL: c.String("endpoint-url"), PathStyle: c.Bool("path-style"),
			MaxAttempts: c.Int("max-attempts")},
		ManifestPatterns: c.String("manifest-pattern"), CacheControl: c.String("cache-control"),
		CacheControlUnfingerprinted: c.String("cache-control-unfingerprinted"), EncodingSiblings: c.Bool("encoding-siblings"),
		Concurrency: c.Int("concurrency"), DryRun: c.Bool("dry-run"),
		Stdout: rt.Stdout, Log: rt.Log, Secret: rt.Redactor.Add,
	})
}
