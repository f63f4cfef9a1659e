package assetpublish

import (
	"context"
	"crypto/md5"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/assets"
	"github.com/slipway-deploy/slipway/internal/assetstore"
	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/outcome"
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

// What a run reports: its outcome, the log line's attributes, and the
// counts as outputs once the tree was read.
func TestReport(t *testing.T) {
	for _, tc := range []struct {
		name    string
		res     Result
		outcome outcome.Outcome
		reason  string
		attrs   []any
		outputs map[string]string
	}{
		{"published", Result{Destination: "s3://b/p/", Uploaded: 2, Skipped: 3, Bytes: 50, counted: true}, outcome.Published,
			"2 uploaded, 3 already at s3://b/p/ (50 bytes)", []any{"destination", "s3://b/p/", "uploaded", 2, "skipped", 3, "bytes", int64(50)},
			map[string]string{"uploaded": "2", "skipped": "3", "bytes": "50"}},
		{"all there", Result{Destination: "file:///x", Skipped: 4, counted: true}, outcome.AlreadyThere,
			"0 uploaded, 4 already at file:///x (0 bytes)", []any{"destination", "file:///x", "uploaded", 0, "skipped", 4, "bytes", int64(0)},
			map[string]string{"uploaded": "0", "skipped": "4", "bytes": "0"}},
		{"dry run", Result{Destination: "file:///x", Uploaded: 4, Bytes: 9, DryRun: true, counted: true}, outcome.DryRun,
			"dry run: 4 would be uploaded, 0 already at file:///x (9 bytes)", []any{"destination", "file:///x", "would_upload", 4, "skipped", 0, "bytes", int64(9)},
			map[string]string{"uploaded": "4", "skipped": "0", "bytes": "9"}},
		{"stopped before the tree was read", Result{}, outcome.AlreadyThere, "0 uploaded, 0 already at  (0 bytes)",
			[]any{"destination", "", "uploaded", 0, "skipped", 0, "bytes", int64(0)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.res.Report()
			assert.Equal(t, tc.outcome, r.Outcome)
			assert.Equal(t, tc.reason, r.Reason)
			assert.Equal(t, "published", r.Event)
			assert.Equal(t, tc.attrs, r.Attrs)
			assert.Equal(t, tc.outputs, r.Outputs)
			if r.Outputs != nil {
				assert.ElementsMatch(t, Outputs, slices.Collect(maps.Keys(r.Outputs)), "the outputs the step declares")
			}
		})
	}
}

// The store compares what Inspect hashed, the parts' hashes included: a
// multipart object is then found the same by its predicted ETag.
func TestContentIsWhatInspectHashed(t *testing.T) {
	dir := t.TempDir()
	body := make([]byte, 12000)
	for i := range body {
		body[i] = byte(i * 7)
	}
	p := filepath.Join(dir, "video-0a1b2c3d4e5f.mp4")
	require.NoError(t, os.WriteFile(p, body, 0o644))
	a, err := assets.Policy{PartSize: 5000}.Inspect(assets.File{Rel: "video-0a1b2c3d4e5f.mp4", Path: p, Size: 12000}, nil)
	require.NoError(t, err)
	c := content(a)
	assert.Equal(t, int64(12000), c.Size)
	assert.Equal(t, md5.Sum(body), c.MD5)
	require.Len(t, c.PartMD5s, 3)
	assert.Equal(t, md5.Sum(body[10000:]), c.PartMD5s[2])
	assert.Regexp(t, `^[0-9a-f]{32}-3$`, assetstore.ETag(c))
}
