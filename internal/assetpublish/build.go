package assetpublish

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/slipway-deploy/slipway/internal/childproc"
)

// buildGracePeriod is how long the build has to exit after SIGTERM before
// its process group is killed.
const buildGracePeriod = 10 * time.Second

// runBuild runs the asset build command with sh -c in dir, streaming its
// output to out a whole line at a time. It runs in a process group of its
// own (package childproc): when ctx ends (SIGTERM) the whole build stops,
// and nothing it started outlives it. A non-zero exit fails the step
// (exit 1) naming the status.
func runBuild(ctx context.Context, command, dir string, out io.Writer, log *slog.Logger) error {
	return childproc.StepError(childproc.Cmd{Args: []string{"sh", "-c", command}, Name: fmt.Sprintf("asset command %q", command), Dir: dir,
		Stdout: out, Stderr: out, GracePeriod: buildGracePeriod, Log: log}.Run(ctx))
}
