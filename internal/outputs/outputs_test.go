package outputs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	require.NoError(t, Write(dir, map[string]string{"changed": "true", "commit": "abc"}))
	b, err := os.ReadFile(filepath.Join(dir, "changed"))
	require.NoError(t, err)
	assert.Equal(t, "true", string(b))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "no temp files left behind")

	assert.NoError(t, Write("", map[string]string{"x": "y"}))
	assert.Error(t, Write(dir, map[string]string{"../escape": "x"}))
}
