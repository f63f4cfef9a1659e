package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/stepcli"
)

// precompile-assets takes exactly the app names the charts repo takes: one
// rule (chartsrepo.ValidateApp) for every step.
func TestAppNameRuleIsTheChartsRepos(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "a.css"), []byte("a{}"), 0o644))
	for _, app := range []string{"frontend", "router-api", "my_app", "app_1.2", "app.1", strings.Repeat("a", 64), "Frontend", ".."} {
		t.Run(app, func(t *testing.T) {
			dest := t.TempDir()
			r := runStep(t, "--app", app, "--source-dir", src, "--destination", "file://"+dest)
			entries, err := os.ReadDir(dest)
			require.NoError(t, err)
			if chartsrepo.ValidateApp(app) == nil {
				assert.Equal(t, exitcode.OK, r.code, r.stderr)
				assert.NotEmpty(t, entries)
				return
			}
			assert.Equal(t, exitcode.Invalid, r.code, r.stderr)
			assert.Contains(t, r.stderr, "is not a valid name")
			assert.Empty(t, entries, "nothing published")
		})
	}
}

// An outputs folder that cannot be written stops the step before it
// uploads anything (exit 2), for root too.
func TestUnwritableOutputsDirUploadsNothing(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "a.css"), []byte("a{}"), 0o644))
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	dest := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := stepcli.Main(step(), []string{"precompile-assets", "--log-format", "json", "--app", "frontend",
		"--source-dir", src, "--destination", "file://" + dest, "--outputs-dir", filepath.Join(file, "out")}, &stdout, &stderr)
	assert.Equal(t, exitcode.Invalid, code, stderr.String())
	assert.Contains(t, stderr.String(), "is not writable")
	entries, err := os.ReadDir(dest)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing published")
}
