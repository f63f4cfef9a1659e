package gitwriter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/gittest"
)

func TestFileHistory(t *testing.T) {
	srv := gittest.New(t, seed())
	c0 := srv.Head()
	srv.Commit("router", map[string]string{"charts/app-config/image-tags/staging/router": "image_tag: v8\n"})
	c2 := srv.Commit("v2", map[string]string{tagPath: "image_tag: v2\n"})
	c3 := srv.Commit("router", map[string]string{"charts/app-config/image-tags/staging/router": "image_tag: v9\n"})
	c4 := srv.Commit("flag", map[string]string{tagPath: "image_tag: v2\npromote_deployment: true\n"})
	srv.Commit("readme", map[string]string{"README.md": "charts!\n"})

	type seen struct{ commit, content string }
	history := func(depth int, stopAfter int) []seen {
		var out []seen
		w := newWriter(srv.URL(), nil, nil)
		err := w.FileHistory(context.Background(), tagPath, depth, func(r Revision) bool {
			out = append(out, seen{r.Commit, string(r.Content)})
			want, err := time.Parse(time.RFC3339, srv.Git("log", "-1", "--format=%cI", r.Commit))
			require.NoError(t, err)
			assert.True(t, want.Equal(r.When), "committer time of %s", r.Commit)
			return len(out) < stopAfter
		})
		require.NoError(t, err)
		return out
	}
	full := []seen{
		{c4, "image_tag: v2\npromote_deployment: true\n"},
		{c2, "image_tag: v2\n"},
		{c0, "image_tag: v1\n"},
	}
	assert.Equal(t, full, history(100, 10), "each version with the commit that set it")
	assert.Equal(t, full[:2], history(100, 2), "stops when visit says so")
	assert.Equal(t, full[:1], history(2, 10), "depth 2 ends inside the newest version")
	assert.Equal(t, []seen{full[0], {c3, "image_tag: v2\n"}}, history(3, 10),
		"at the shallow boundary the oldest fetched commit stands in (never earlier than the real one)")

	// The writer's own depth-1 store is untouched and still writes.
	w := newWriter(srv.URL(), nil, nil)
	require.NoError(t, w.FileHistory(context.Background(), tagPath, 5, func(Revision) bool { return true }))
	cur, err := w.ReadFiles(context.Background(), tagPath, "charts/app-config/image-tags/staging/router", "missing")
	require.NoError(t, err)
	require.Len(t, cur, 3)
	assert.Equal(t, "image_tag: v9\n", string(cur[1].Content))
	assert.False(t, cur[2].Exists)
	assert.Equal(t, cur[0].Head, cur[1].Head)
	_, err = w.Write(context.Background(), tagPath, "", setTo("image_tag: v3\n", "v3"), false)
	require.NoError(t, err)
	got, _ := srv.Read(tagPath)
	assert.Equal(t, "image_tag: v3\n", got)
}

func TestFileHistoryMissingBranch(t *testing.T) {
	srv := gittest.New(t, seed())
	w := newWriter(srv.URL(), nil, func(o *Options) { o.Branch = "nope" })
	err := w.FileHistory(context.Background(), tagPath, 5, func(Revision) bool { return true })
	require.Error(t, err)
}

func TestReuseNextFetch(t *testing.T) {
	srv := gittest.New(t, seed())
	w := newWriter(srv.URL(), nil, nil)
	_, err := w.ReadFiles(context.Background(), tagPath)
	require.NoError(t, err)
	// Another writer moves the branch after our read.
	srv.Commit("other", map[string]string{"charts/app-config/image-tags/staging/router": "image_tag: v8\n"})
	w.ReuseNextFetch()
	res, err := w.Write(context.Background(), tagPath, "", setTo("image_tag: v2\n", "v2"), false)
	require.NoError(t, err)
	assert.Equal(t, 2, res.Attempts, "the first attempt used the old head, was refused, and the retry fetched")
	got, _ := srv.Read(tagPath)
	assert.Equal(t, "image_tag: v2\n", got)
	got, _ = srv.Read("charts/app-config/image-tags/staging/router")
	assert.Equal(t, "image_tag: v8\n", got, "the other writer's update is kept")

	// With the head still current, one attempt and no second fetch.
	_, err = w.ReadFiles(context.Background(), tagPath)
	require.NoError(t, err)
	w.ReuseNextFetch()
	res, err = w.Write(context.Background(), tagPath, "", setTo("image_tag: v3\n", "v3"), false)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Attempts)
	// The reuse applies to one Write only.
	srv.Commit("other again", map[string]string{"README.md": "x\n"})
	res, err = w.Write(context.Background(), tagPath, "", setTo("image_tag: v4\n", "v4"), false)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Attempts, "a plain Write fetches first")
}
