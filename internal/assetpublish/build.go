package assetpublish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"

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

// RunBuild runs the asset build command with sh -c in dir, streaming its
// output to out. A non-zero exit fails the step (exit 1) naming the status.
func RunBuild(ctx context.Context, command, dir string, out io.Writer) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit):
		return exitcode.Failedf("asset command %q exited with status %d", command, exit.ExitCode())
	default:
		return fmt.Errorf("asset command %q: %w", command, err)
	}
}
