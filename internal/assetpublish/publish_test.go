package assetpublish

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/assets"
	"github.com/slipway-deploy/slipway/internal/exitcode"
)

// A file that cannot be read when it is hashed (here: gone after the walk;
// for a non-root user also a mode-000 file) refuses the whole run as bad
// input, before anything is listed or written.
func TestInspectAllRefusesUnreadableFiles(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "a.css")
	require.NoError(t, os.WriteFile(ok, []byte("a{}"), 0o644))
	files := []assets.File{
		{Rel: "a.css", Path: ok, Size: 3},
		{Rel: "gone.css", Path: filepath.Join(dir, "gone.css"), Size: 3},
		{Rel: "also-gone.js", Path: filepath.Join(dir, "also-gone.js"), Size: 1},
	}
	_, err := inspectAll(context.Background(), assets.Policy{}, files)
	require.Error(t, err)
	assert.Equal(t, exitcode.Invalid, exitcode.Code(err))
	assert.Contains(t, err.Error(), "2 of 3 files could not be read, nothing uploaded")
}
