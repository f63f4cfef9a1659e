package controlplane

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The binaries hack/controlplane.sh builds.
var binaries = []string{"etcd", "kube-apiserver", "workflow-controller", "argoexec"}

// buildTimeout bounds a first build (about 21 minutes cold on 2 cores).
const buildTimeout = 40 * time.Minute

// RepoRoot is the folder holding go.mod, found upwards from the working
// directory (a test runs in its package's folder).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// binDir returns the folder holding the control plane's binaries, running
// hack/controlplane.sh to build whatever is missing (it is cached outside
// the checkout, so this is a no-op after the first build).
func binDir(t testing.TB) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "hack", "controlplane.sh")
	out, err := exec.Command(script, "--print-dir").Output()
	if err != nil {
		t.Fatalf("%s --print-dir: %v", script, err)
	}
	dir := strings.TrimSpace(string(out))
	if missing(dir) == "" {
		return dir
	}
	t.Logf("%s missing from %s: running %s (cold: about 21 minutes)", missing(dir), dir, script)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if end, ok := d.Deadline(); ok {
			ctx, cancel = context.WithDeadline(ctx, end.Add(-time.Minute))
			defer cancel()
		}
	}
	cmd := exec.CommandContext(ctx, script)
	cmd.Dir = root
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v (raise go test's -timeout for a first build)\n%s", script, err, log.String())
	}
	t.Logf("%s", strings.TrimSpace(log.String()))
	if m := missing(dir); m != "" {
		t.Fatalf("%s ran but %s is still missing from %s", script, m, dir)
	}
	return dir
}

// missing names the first binary not in dir, or "".
func missing(dir string) string {
	for _, b := range binaries {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.Mode()&0o111 == 0 {
			return b
		}
	}
	return ""
}
