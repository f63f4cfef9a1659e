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

// Check fails, for root too, on a folder that cannot be written, and
// leaves nothing behind in one that can.
func TestCheck(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	fresh := filepath.Join(t.TempDir(), "new", "out")
	for _, tc := range []struct {
		name, dir string
		ok        bool
	}{
		{"not asked for", "", true},
		{"created", fresh, true},
		{"parent is a file", filepath.Join(file, "out"), false},
		{"is a file", file, false},
		{"read-only file system", "/proc/self", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.dir)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "outputs dir "+tc.dir+" is not writable")
		})
	}
	entries, err := os.ReadDir(fresh)
	require.NoError(t, err)
	assert.Empty(t, entries, "the probe file is removed")
}
