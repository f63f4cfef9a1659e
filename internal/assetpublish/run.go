package assetpublish

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path"
	"path/filepath"
	"strconv"

	"github.com/slipway-deploy/slipway/internal/assets"
	"github.com/slipway-deploy/slipway/internal/assetstore"
	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/outcome"
)

// Config is a precompile-assets run: the step's flags, and where it logs
// and prints.
type Config struct {
	App string
	// SourceDir is the tree to publish; default public/assets/App.
	SourceDir string
	// Command is the asset build, run first with sh -c ("": none).
	Command string
	// Destination is s3://BUCKET/PREFIX or file:///DIR; default
	// file:///tmp/slipway-assets/App.
	Destination string
	// Store configures an S3 destination (Concurrency is set from
	// Concurrency below).
	Store assetstore.Options
	// ManifestPatterns are comma-separated globs (assets.ParsePatterns).
	ManifestPatterns            string
	CacheControl                string
	CacheControlUnfingerprinted string
	EncodingSiblings            bool
	// Concurrency is the number of objects uploaded at once, 1 to 1024.
	Concurrency int
	// DryRun lists what would be uploaded on Stdout and writes nothing.
	DryRun bool
	// Stdout gets the build's output and the dry run's list.
	Stdout io.Writer
	Log    *slog.Logger
	// Secret is given every credential to mask in all output.
	Secret func(...string)
}

// Outputs are the Argo outputs a Result carries besides `outcome`.
var Outputs = []string{"uploaded", "skipped", "bytes"}

// Result counts a publication's objects and the bytes uploaded.
type Result struct {
	Destination string
	Uploaded    int
	Skipped     int
	Failed      int
	Bytes       int64
	DryRun      bool
	// counted is set once the tree was read: before that there is nothing
	// to count, and no counts are reported.
	counted bool
}

// Run checks cfg, runs the build, then publishes the tree. Errors carry
// exit codes: 2 for bad input (flags, the tree, a missing bucket, refused
// credentials), 1 for what a re-run may fix; a Result returned with an
// error still has its counts.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Secret != nil {
		// before the build, which may print them
		cfg.Secret(assetstore.EnvSecrets()...)
	}
	if err := chartsrepo.ValidateApp(cfg.App); err != nil {
		return Result{}, exitcode.AsInvalid(err)
	}
	src := cfg.SourceDir
	if src == "" {
		src = filepath.Join("public", "assets", cfg.App)
	}
	dest := cfg.Destination
	if dest == "" {
		dest = "file://" + path.Join("/tmp/slipway-assets", cfg.App)
	}
	patterns, err := assets.ParsePatterns(cfg.ManifestPatterns)
	if err != nil {
		return Result{}, exitcode.AsInvalid(err)
	}
	if cfg.Concurrency < 1 || cfg.Concurrency > 1024 {
		return Result{}, exitcode.Invalidf("--concurrency %d: want 1 to 1024", cfg.Concurrency)
	}
	storeOpts := cfg.Store
	storeOpts.Concurrency = cfg.Concurrency
	store, err := assetstore.Open(ctx, dest, storeOpts)
	if err != nil {
		return Result{}, exitcode.AsInvalid(err)
	}
	if cfg.Command != "" {
		cfg.Log.Info("running asset build", "command", cfg.Command)
		if err := runBuild(ctx, cfg.Command, ".", cfg.Stdout, cfg.Log); err != nil {
			return Result{}, err
		}
	}
	return publish(ctx, options{
		sourceDir: src,
		store:     store,
		policy: assets.Policy{
			Manifests:                   patterns,
			CacheControl:                cfg.CacheControl,
			CacheControlUnfingerprinted: cfg.CacheControlUnfingerprinted,
			EncodingSiblings:            cfg.EncodingSiblings,
		},
		concurrency: cfg.Concurrency,
		dryRun:      cfg.DryRun,
		out:         cfg.Stdout,
		log:         cfg.Log,
	})
}

// Report is the outcome: Published when something was uploaded,
// AlreadyThere when every object was, DryRun for a dry run (whose
// "uploaded" is what would be).
func (r Result) Report() outcome.Result {
	res := outcome.Result{Outcome: outcome.AlreadyThere, Event: "published",
		Reason: fmt.Sprintf("%d uploaded, %d already at %s (%d bytes)", r.Uploaded, r.Skipped, r.Destination, r.Bytes)}
	verb := "uploaded"
	switch {
	case r.DryRun:
		res.Outcome, verb = outcome.DryRun, "would_upload"
		res.Reason = fmt.Sprintf("dry run: %d would be uploaded, %d already at %s (%d bytes)", r.Uploaded, r.Skipped, r.Destination, r.Bytes)
	case r.Uploaded > 0:
		res.Outcome = outcome.Published
	}
	res.Attrs = []any{"destination", r.Destination, verb, r.Uploaded, "skipped", r.Skipped, "bytes", r.Bytes}
	if r.counted {
		res.Outputs = map[string]string{
			"uploaded": strconv.Itoa(r.Uploaded),
			"skipped":  strconv.Itoa(r.Skipped),
			"bytes":    strconv.FormatInt(r.Bytes, 10),
		}
	}
	return res
}
