// Command demo is `make demo`: release v2 of an app walked from CI to
// production on this machine by the real binaries in bin/, then the safety
// rules (hack/demo/journey). Ctrl-C stops it and everything it started.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/slipway-deploy/slipway/hack/demo/journey"
)

func main() {
	cfg := journey.Config{Out: os.Stdout, DatabaseURL: os.Getenv("DATABASE_URL")}
	flag.StringVar(&cfg.Dir, "dir", ".cache/demo", "the demo's folder (wiped first, if it is the demo's own)")
	flag.StringVar(&cfg.Bin, "bin", "bin", "the binaries (make build)")
	flag.StringVar(&cfg.Workflows, "workflows", "workflows", "the hooks and WorkflowTemplates")
	flag.StringVar(&cfg.MigrateCommand, "migrate-command", "sh db/migrate", "the apps' migration command (their chart's slipway.migrate.command), run in each app's image")
	flag.BoolVar(&cfg.Brief, "brief", false, "one line per environment instead of one per step")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A second Ctrl-C ends the demo at once (the kernel then kills what it
	// started: localargo and serverproc ask it to).
	go func() { <-ctx.Done(); stop() }()
	_, err := journey.Run(ctx, cfg)
	switch {
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "demo: interrupted")
		os.Exit(130)
	case err != nil:
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
