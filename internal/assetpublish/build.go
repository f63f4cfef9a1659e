package assetpublish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"time"

	"github.com/slipway-deploy/slipway/internal/childproc"
	"github.com/slipway-deploy/slipway/internal/exitcode"
)

// appName is what --app may be: it becomes a path segment of the default
// source dir and destination.
var appName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// CheckApp refuses an app name that is not one lowercase path segment.
func CheckApp(app string) error {
	if !appName.MatchString(app) || app == "." || app == ".." {
		return exitcode.Invalidf("app %q: want lowercase letters, digits, '.', '_' and '-' (at most 63)", app)
	}
	return nil
}

// BuildGracePeriod is how long the build has to exit after SIGTERM before
// its process group is killed.
const BuildGracePeriod = 10 * time.Second

// RunBuild runs the asset build command with sh -c in dir, streaming its
// output to out a whole line at a time. It runs in a process group of its
// own (package childproc): when ctx ends (SIGTERM) the whole build stops,
// and nothing it started outlives it. A non-zero exit fails the step
// (exit 1) naming the status.
func RunBuild(ctx context.Context, command, dir string, out io.Writer, log *slog.Logger) error {
	err := childproc.Cmd{Args: []string{"sh", "-c", command}, Name: fmt.Sprintf("asset command %q", command), Dir: dir,
		Stdout: out, Stderr: out, GracePeriod: BuildGracePeriod, Log: log}.Run(ctx)
	var se *childproc.StartError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return exitcode.AsInvalid(err)
	}
	return exitcode.Failedf("%w", err)
}
