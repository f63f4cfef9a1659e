package githistory

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	gogithttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
)

const tags = "charts/app-config/image-tags"

var auth = &gogithttp.BasicAuth{Username: gitrepo.User, Password: gitrepo.Password}

// remove deletes paths on the branch in one commit, as a person would.
func remove(t *testing.T, s *gitrepo.Server, msg string, paths ...string) {
	t.Helper()
	work := t.TempDir()
	run := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=x", "GIT_AUTHOR_EMAIL=x@x", "GIT_COMMITTER_NAME=x", "GIT_COMMITTER_EMAIL=x@x")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	run("clone", "-q", s.Dir, ".")
	run(append([]string{"rm", "-q", "-r"}, paths...)...)
	run("commit", "-q", "-m", msg)
	run("push", "-q", "origin", "HEAD:main")
}

// history builds a branch with every kind of change a walk must see:
// edits, unrelated commits, deletions, re-creations, new folders, a file
// that becomes a folder, trailers in messages.
func history(t *testing.T) *gitrepo.Server {
	s := gitrepo.New(t, map[string]string{
		tags + "/staging/a":             "image_tag: v1\n",
		tags + "/staging/b":             "image_tag: v1\n",
		tags + "/production/a":          "image_tag: v1\n",
		tags + "/production/b":          "image_tag: v1\n",
		tags + "/production/b-c":        "image_tag: v1\n",
		"charts/app-config/holds.yaml":  "holds: []\n",
		"charts/app-config/other.yaml":  "x: 1\n",
		"README.md":                     "charts\n",
		tags + "/production/b.d/nested": "image_tag: v0\n",
	})
	s.Commit("a v2 in staging", map[string]string{tags + "/staging/a": "image_tag: v2\n"})
	s.Commit("readme", map[string]string{"README.md": "charts!\n"})
	remove(t, s, "drop b in production", tags+"/production/b")
	s.Commit("new app c", map[string]string{tags + "/staging/c": "image_tag: v5\n", tags + "/integration/c": "image_tag: v5\n"})
	s.Commit("Roll back a\n\nSlipway-Rollback-From: v2\n", map[string]string{tags + "/staging/a": "image_tag: v1\n"})
	s.Commit("b is back", map[string]string{tags + "/production/b": "image_tag: v3\n"})
	s.Commit("hold", map[string]string{"charts/app-config/holds.yaml": "holds: [x]\n"})
	remove(t, s, "b-c becomes a folder", tags+"/production/b-c")
	s.Commit("b-c as a folder", map[string]string{tags + "/production/b-c/x": "image_tag: v9\n", tags + "/staging/b": "image_tag: v2\n"})
	s.Commit("several at once", map[string]string{tags + "/staging/b": "image_tag: v3\n", tags + "/production/a": "image_tag: v2\n"})
	s.Commit("two in one folder", map[string]string{tags + "/staging/a": "image_tag: v7\n", tags + "/staging/c": "image_tag: v7\n"})
	return s
}

type byPath map[string][]gitwriter.Revision

// reference is every file's history as gitwriter walks it, one file at a
// time: what the one-pass walk must equal.
func reference(t *testing.T, s *gitrepo.Server, paths []string, depth int) byPath {
	w := gitwriter.New(gitwriter.Options{URL: s.URL(), Auth: auth})
	cur, err := w.Read(context.Background(), "README.md")
	require.NoError(t, err)
	out := byPath{}
	for _, p := range paths {
		var revs []gitwriter.Revision
		require.NoError(t, cur.History(context.Background(), p, depth, func(r gitwriter.Revision) bool {
			revs = append(revs, r)
			return true
		}))
		// gitwriter says what each version replaced (the next one down);
		// the walk does not look ahead.
		for i := range revs {
			if before := revs[i].Before; before != nil {
				require.Less(t, i+1, len(revs), "%s: a version before the oldest", p)
				assert.Equal(t, gitwriter.Version{Content: revs[i+1].Content, Exists: revs[i+1].Exists}, *before, "%s at %s", p, revs[i].Commit)
				revs[i].Before = nil
			}
		}
		// gitwriter ends with the file's absence before it was created;
		// the walk reports versions and deletions only.
		for len(revs) > 0 && !revs[len(revs)-1].Exists {
			revs = revs[:len(revs)-1]
		}
		if len(revs) > 0 {
			out[p] = revs
		}
	}
	return out
}

func walk(t *testing.T, url string, depth int, ps Paths) (byPath, []Commit) {
	r, err := Fetch(context.Background(), Options{URL: url, Auth: auth, Depth: depth})
	require.NoError(t, err)
	out := byPath{}
	line, err := r.Walk(context.Background(), ps, func(p string, rev gitwriter.Revision) {
		out[p] = append(out[p], rev)
	})
	require.NoError(t, err)
	return out, line
}

func keys(m byPath) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// One pass over the history gives, for every selected file, exactly the
// versions gitwriter's per-file walk gives: the same commits, times,
// contents, messages, and the same boundary where the fetch was shallow.
func TestWalkEqualsThePerFileHistory(t *testing.T) {
	s := history(t)
	ps := Paths{Dirs: []string{tags}, Files: []string{"charts/app-config/holds.yaml"}}
	for _, depth := range []int{0, 1, 3, 6, 100} {
		got, line := walk(t, s.URL(), depth, ps)
		want := reference(t, s, keys(got), depth)
		assert.Equal(t, want, got, "depth %d", depth)
		if depth == 0 || depth == 100 {
			assert.Len(t, line, s.CommitCount())
		} else {
			assert.Len(t, line, depth)
		}
		assert.Equal(t, s.Head(), line[0].Hash)
	}
	got, _ := walk(t, s.URL(), 0, ps)
	assert.Equal(t, []string{
		"charts/app-config/holds.yaml",
		tags + "/integration/c",
		tags + "/production/a", tags + "/production/b", tags + "/production/b-c", tags + "/production/b-c/x",
		tags + "/production/b.d/nested",
		tags + "/staging/a", tags + "/staging/b", tags + "/staging/c",
	}, keys(got), "other.yaml and README.md are not selected")
	a := got[tags+"/staging/a"]
	require.Len(t, a, 4)
	assert.Equal(t, "image_tag: v7\n", string(a[0].Content))
	assert.Equal(t, "Roll back a\n\nSlipway-Rollback-From: v2\n", a[1].Message)
	assert.Equal(t, "image_tag: v1\n", string(a[1].Content))
	b := got[tags+"/production/b"]
	require.Len(t, b, 3)
	assert.Equal(t, []bool{true, false, true}, []bool{b[0].Exists, b[1].Exists, b[2].Exists}, "back, dropped, seeded")
}

// The file transport works as well as HTTP; a missing branch says so.
func TestFetchOverFileAndMissingBranch(t *testing.T) {
	s := history(t)
	got, _ := walk(t, s.FileURL(), 0, Paths{Dirs: []string{tags + "/staging"}})
	assert.Len(t, got[tags+"/staging/b"], 3)
	assert.Len(t, got[tags+"/staging/c"], 2)
	_, err := Fetch(context.Background(), Options{URL: s.URL(), Auth: auth, Branch: "nope"})
	assert.ErrorIs(t, err, ErrBranchNotFound)
	_, err = Fetch(context.Background(), Options{URL: "file://" + filepath.Join(t.TempDir(), "none.git")})
	assert.Error(t, err)
}
