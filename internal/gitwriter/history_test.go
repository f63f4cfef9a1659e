package gitwriter

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
)

// History from the head a Read fetched: each version with the commit that
// set it, within the depth.
func TestHistory(t *testing.T) {
	srv := gitrepo.New(t, seed())
	c0 := srv.Head()
	srv.Commit("router", map[string]string{"charts/app-config/image-tags/staging/router": "image_tag: v8\n"})
	c2 := srv.Commit("v2", map[string]string{tagPath: "image_tag: v2\n"})
	c3 := srv.Commit("router", map[string]string{"charts/app-config/image-tags/staging/router": "image_tag: v9\n"})
	c4 := srv.Commit("flag", map[string]string{tagPath: "image_tag: v2\npromote_deployment: true\n"})
	srv.Commit("readme", map[string]string{"README.md": "charts!\n"})

	type seen struct{ commit, content string }
	history := func(depth int, stopAfter int) []seen {
		var out []seen
		cur, err := newWriter(srv.URL(), nil, nil).Read(context.Background(), tagPath)
		require.NoError(t, err)
		err = cur.History(context.Background(), tagPath, depth, func(r Revision) bool {
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
	first, err := w.Read(context.Background(), tagPath)
	require.NoError(t, err)
	require.NoError(t, first.History(context.Background(), tagPath, 5, func(Revision) bool { return true }))
	router, err := first.Read("charts/app-config/image-tags/staging/router")
	require.NoError(t, err)
	missing, err := first.Read("missing")
	require.NoError(t, err)
	assert.Equal(t, "image_tag: v9\n", string(router.Content))
	assert.False(t, missing.Exists)
	assert.Equal(t, first.Head, router.Head)
	_, err = w.Write(context.Background(), tagPath, "", setTo("image_tag: v3\n", "v3"), false)
	require.NoError(t, err)
	got, _ := srv.Read(tagPath)
	assert.Equal(t, "image_tag: v3\n", got)
}

// Each version comes with the message of the commit that set it (its
// trailers say what kind of change it was), except at the shallow
// boundary, where the setter is unknown and the revision says so.
func TestHistoryRevisionsCarryTheSettersMessage(t *testing.T) {
	srv := gitrepo.New(t, seed())
	c2 := srv.Commit("v2\n\nSlipway-Rollback-From: v3", map[string]string{tagPath: "image_tag: v2\n"})
	srv.Commit("readme", map[string]string{"README.md": "charts!\n"})
	revisions := func(depth int) []Revision {
		cur, err := newWriter(srv.URL(), nil, nil).Read(context.Background(), tagPath)
		require.NoError(t, err)
		var out []Revision
		require.NoError(t, cur.History(context.Background(), tagPath, depth, func(r Revision) bool {
			out = append(out, r)
			return true
		}))
		return out
	}
	all := revisions(10)
	require.Len(t, all, 2)
	assert.Equal(t, c2, all[0].Commit)
	assert.Equal(t, "v2\n\nSlipway-Rollback-From: v3\n", all[0].Message)
	assert.False(t, all[0].Cut)
	assert.Equal(t, "Seed charts repo\n", all[1].Message)
	assert.False(t, all[1].Cut, "the root commit set what it holds")

	cut := revisions(2)
	require.Len(t, cut, 1)
	assert.Equal(t, c2, cut[0].Commit, "the oldest fetched commit stands in")
	assert.True(t, cut[0].Cut, "its parent was not fetched: whether it set the version is unknown")
	assert.Empty(t, cut[0].Message)
}

// A path that was a folder, or had a file where a folder on its way is,
// at some commit, has no version there: the walk goes on past it.
func TestHistoryOfAPathThatWasAFolder(t *testing.T) {
	srv := gitrepo.New(t, map[string]string{"charts/x/y": "a\n", "charts/z": "z\n"})
	// The swap, as a person would make it with git.
	work := t.TempDir()
	for _, args := range [][]string{{"clone", "-q", srv.Dir, "."}, {"rm", "-q", "-r", "charts/x", "charts/z"}} {
		gitIn(t, work, args...)
	}
	require.NoError(t, os.MkdirAll(filepath.Join(work, "charts/z"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(work, "charts/x"), []byte("b\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(work, "charts/z/w"), []byte("w\n"), 0o644))
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", "swap"}, {"push", "-q", "origin", "HEAD:main"}} {
		gitIn(t, work, args...)
	}
	cur, err := newWriter(srv.URL(), nil, nil).Read(context.Background(), "charts/x")
	require.NoError(t, err)
	for _, path := range []string{"charts/x", "charts/x/y", "charts/z", "charts/z/w"} {
		var exists []bool
		require.NoError(t, cur.History(context.Background(), path, 10, func(r Revision) bool {
			exists = append(exists, r.Exists)
			return true
		}), path)
		assert.Len(t, exists, 2, path)
	}
}

func TestHistoryMissingBranch(t *testing.T) {
	srv := gitrepo.New(t, seed())
	w := newWriter(srv.URL(), nil, func(o *Options) { o.Branch = "nope" })
	_, err := w.Read(context.Background(), tagPath)
	require.ErrorIs(t, err, ErrBranchNotFound)
	assert.Contains(t, err.Error(), `"nope"`)
}

// The edit reads other files and the history at exactly the head it is
// applied to: on the first attempt the head it fetched (even when the
// branch has moved on since), on the retry the new head.
func TestEditReadsOtherFilesAndHistoryAtItsHead(t *testing.T) {
	const router = "charts/app-config/image-tags/staging/router"
	srv := gitrepo.New(t, seed())
	first := srv.Head()
	type seen struct {
		head, router string
		history      []string // the tag file's versions, newest first
	}
	var attempts []seen
	w := newWriter(srv.URL(), nil, nil)
	res, err := w.Write(context.Background(), tagPath, "", func(cur Current) (Edit, error) {
		if len(attempts) == 0 {
			// Another writer lands after our fetch: our head is now behind the tip.
			srv.Commit("router v8, frontend v5", map[string]string{router: "image_tag: v8\n", tagPath: "image_tag: v5\n"})
		}
		r, err := cur.Read(router)
		if err != nil {
			return Edit{}, err
		}
		var versions []string
		err = cur.History(context.Background(), tagPath, 50, func(rev Revision) bool {
			versions = append(versions, string(rev.Content))
			return true
		})
		if err != nil {
			return Edit{}, err
		}
		attempts = append(attempts, seen{cur.Head, string(r.Content), versions})
		return Edit{Changed: true, Content: []byte("image_tag: v9\n"), Message: "v9"}, nil
	}, false)
	require.NoError(t, err)
	require.Equal(t, 2, res.Attempts)
	require.Len(t, attempts, 2)
	assert.Equal(t, seen{first, "image_tag: v7\n", []string{"image_tag: v1\n"}}, attempts[0],
		"attempt 1 reads its own head, not the tip that moved on")
	assert.Equal(t, "image_tag: v8\n", attempts[1].router)
	assert.Equal(t, []string{"image_tag: v5\n", "image_tag: v1\n"}, attempts[1].history, "the retry's history ends at the new head")
	assert.NotEqual(t, first, attempts[1].head)
	got, _ := srv.Read(tagPath)
	assert.Equal(t, "image_tag: v9\n", got)
}

func TestCurrentNotReadFromAHead(t *testing.T) {
	_, err := Current{}.Read(tagPath)
	assert.ErrorIs(t, err, ErrNoHead)
	err = Current{}.History(context.Background(), tagPath, 5, func(Revision) bool { return true })
	assert.ErrorIs(t, err, ErrNoHead)
}

// A head that has left the fetched history (the branch moved on by more
// than the depth) is an error, never a walk from another head. (The head
// has a parent: a root's history is whole in the write's own store.)
func TestHistoryOfAHeadBeyondTheDepth(t *testing.T) {
	srv := gitrepo.New(t, seed())
	srv.Commit("v2", map[string]string{tagPath: "image_tag: v2\n"})
	w := newWriter(srv.URL(), nil, nil)
	_, err := w.Write(context.Background(), tagPath, "", func(cur Current) (Edit, error) {
		for i := range 3 {
			srv.Commit("move on", map[string]string{"README.md": strings.Repeat("x", i+1)})
		}
		return Edit{}, cur.History(context.Background(), tagPath, 2, func(Revision) bool { return true })
	}, false)
	require.ErrorIs(t, err, ErrHeadNotInHistory)
}

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=x", "GIT_AUTHOR_EMAIL=x@x", "GIT_COMMITTER_NAME=x", "GIT_COMMITTER_EMAIL=x@x")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// historyRepo is a charts repo whose tag file was set by "set v2" (with
// a trailer, as bumptag's rollbacks carry) and then left alone for
// `after` commits to other files. It returns the server and that commit.
func historyRepo(t *testing.T, after int) (*gitrepo.Server, string) {
	srv := gitrepo.New(t, seed())
	routerCommits(t, srv, 5)
	setter := srv.Commit("set v2\n\nSlipway-Rollback-From: v3", map[string]string{tagPath: "image_tag: v2\n"})
	routerCommits(t, srv, after)
	return srv, setter
}

// routerCommits adds n commits that set the router's tag, in one git
// fast-import.
func routerCommits(t *testing.T, srv *gitrepo.Server, n int) {
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "commit refs/heads/main\ncommitter Seeder <seed@example.invalid> %d +0000\ndata 7\nrouter\n", time.Now().Unix())
		if i == 0 {
			fmt.Fprintf(&in, "from %s\n", srv.Head())
		}
		tag := fmt.Sprintf("image_tag: v%d\n", 100+i)
		fmt.Fprintf(&in, "M 100644 inline charts/app-config/image-tags/staging/router\ndata %d\n%s", len(tag), tag)
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir, cmd.Stdin = srv.Dir, strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// firstRevision writes through w, reading in the edit the tag file's
// newest version from the history (depth commits at most) and stopping
// there, as the promoter does when that version's setter ends its
// reading.
func firstRevision(t *testing.T, w *Writer, depth int) Revision {
	var got []Revision
	_, err := w.Write(context.Background(), tagPath, "", func(cur Current) (Edit, error) {
		got = nil
		err := cur.History(context.Background(), tagPath, depth, func(r Revision) bool {
			got = append(got, r)
			return false
		})
		return Edit{Changed: true, Content: []byte("image_tag: v4\n"), Message: "v4"}, err
	}, false)
	require.NoError(t, err)
	require.Len(t, got, 1)
	return got[0]
}

// With a history window, a write whose edit finds the setter of the
// file's version among the last commits makes no request of its own for
// the history: the window came with the write's fetch (three requests
// in all, as a write that reads no history), and the history read stops
// there, far short of the depth asked for.
func TestHistoryStopsInTheWindowWhenTheSetterIsRecent(t *testing.T) {
	srv, setter := historyRepo(t, 10)
	wire, u := newWire(t, srv.URL())
	w := newWriter(u, nil, func(o *Options) { o.HistoryWindow = 16 })
	rev := firstRevision(t, w, 500)
	assert.Equal(t, setter, rev.Commit, "the commit that set the version")
	assert.Equal(t, "set v2\n\nSlipway-Rollback-From: v3\n", rev.Message)
	assert.False(t, rev.Cut)
	assert.Equal(t, &Version{Content: []byte("image_tag: v1\n"), Exists: true}, rev.Before, "the version it replaced, read from its parent")
	calls, _ := wire.take()
	assert.Equal(t, []string{"GET git-upload-pack", "POST git-upload-pack", "POST git-receive-pack"}, calls)

	// The same write and history read without a window: the write's
	// fetch is depth 1, and the history needs one fetch of its own, of a
	// window, not of the whole depth.
	srv2, setter2 := historyRepo(t, 10)
	wire2, u2 := newWire(t, srv2.URL())
	rev = firstRevision(t, newWriter(u2, nil, nil), 500)
	assert.Equal(t, setter2, rev.Commit)
	assert.Equal(t, []int{1, DefaultHistoryWindow}, wire2.fetchDepths())
}

// A setter deeper than the first window is still found: the walk fetches
// deeper each time it runs off the end of what was fetched, and finds
// the very commit (its message too, not a cut), however many commits
// later it was.
func TestHistoryDeepensPastTheWindow(t *testing.T) {
	srv, setter := historyRepo(t, 40)
	wire, u := newWire(t, srv.URL())
	rev := firstRevision(t, newWriter(u, nil, func(o *Options) { o.HistoryWindow = 8 }), 500)
	assert.Equal(t, setter, rev.Commit)
	assert.Equal(t, "set v2\n\nSlipway-Rollback-From: v3\n", rev.Message)
	assert.False(t, rev.Cut)
	assert.Equal(t, []int{8, 32, 128}, wire.fetchDepths(), "the write's fetch, then deeper, four times each time")

	// Never deeper than the depth asked for: the walk ends there, cut.
	srv, _ = historyRepo(t, 40)
	oldest := srv.Git("rev-parse", "main~19")
	wire, u = newWire(t, srv.URL())
	rev = firstRevision(t, newWriter(u, nil, func(o *Options) { o.HistoryWindow = 8 }), 20)
	assert.True(t, rev.Cut, "set before the last 20 commits")
	assert.Equal(t, oldest, rev.Commit, "the oldest of the last 20 commits stands in")
	assert.Equal(t, []int{8, 20}, wire.fetchDepths())
}

// With the branch strategy, a write whose edit fetched deeper history
// still deletes its work branch: the deepened store is dropped only
// after that.
func TestBranchStrategyAfterADeeperHistoryRead(t *testing.T) {
	srv, setter := historyRepo(t, 20)
	w := newWriter(srv.URL(), nil, func(o *Options) { o.Strategy = Branch; o.HistoryWindow = 4 })
	var got string
	_, err := w.Write(context.Background(), tagPath, "slipway/v4", func(cur Current) (Edit, error) {
		err := cur.History(context.Background(), tagPath, 500, func(r Revision) bool {
			got = r.Commit
			return false
		})
		return Edit{Changed: true, Content: []byte("image_tag: v4\n"), Message: "v4"}, err
	}, false)
	require.NoError(t, err)
	assert.Equal(t, setter, got)
	assert.Equal(t, []string{"main"}, srv.Branches(), "the work branch is gone")
	content, _ := srv.Read(tagPath)
	assert.Equal(t, "image_tag: v4\n", content)
}
