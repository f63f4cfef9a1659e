package gitwriter

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/transport"
	gogithttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/testsupport/gitrepo"
	"github.com/slipway-deploy/slipway/internal/testsupport/syncbuffer"
)

const tagPath = "charts/app-config/image-tags/staging/frontend"

var goodAuth = &gogithttp.BasicAuth{Username: gitrepo.User, Password: gitrepo.Password}

func seed() map[string]string {
	return map[string]string{
		tagPath: "image_tag: v1\n",
		"charts/app-config/image-tags/staging/router": "image_tag: v7\n",
		"README.md": "charts\n",
	}
}

func newWriter(url string, logs *syncbuffer.Buffer, mod func(*Options)) *Writer {
	o := Options{URL: url, Auth: goodAuth, Backoff: func(int, time.Duration) time.Duration { return time.Millisecond }}
	if logs != nil {
		o.Log = slog.New(slog.NewTextHandler(logs, nil))
	}
	if mod != nil {
		mod(&o)
	}
	return New(o)
}

func setTo(content, msg string) EditFunc {
	return func(cur Current) (Edit, error) {
		if string(cur.Content) == content {
			return Edit{Reason: "already there"}, nil
		}
		return Edit{Changed: true, Content: []byte(content), Message: msg}, nil
	}
}

func TestWriteOverHTTPAndFile(t *testing.T) {
	for _, transportName := range []string{"http", "file"} {
		t.Run(transportName, func(t *testing.T) {
			s := gitrepo.New(t, seed())
			url := s.URL()
			if transportName == "file" {
				url = s.FileURL()
			}
			before := s.CommitCount()
			res, err := newWriter(url, nil, nil).Write(context.Background(), tagPath, "", setTo("image_tag: v2\n", "Update frontend"), false)
			require.NoError(t, err)
			assert.True(t, res.Changed)
			assert.Equal(t, s.Head(), res.Commit)
			got, _ := s.Read(tagPath)
			assert.Equal(t, "image_tag: v2\n", got)
			assert.Equal(t, before+1, s.CommitCount())
			assert.Equal(t, "Update frontend", s.Message("main"))
			assert.Contains(t, res.Diff, "-image_tag: v1\n+image_tag: v2\n")
			other, _ := s.Read("charts/app-config/image-tags/staging/router")
			assert.Equal(t, "image_tag: v7\n", other, "other files untouched")
			s.Git("fsck", "--strict")

			// Re-run: nothing to do, no commit.
			res, err = newWriter(url, nil, nil).Write(context.Background(), tagPath, "", setTo("image_tag: v2\n", "Update frontend"), false)
			require.NoError(t, err)
			assert.False(t, res.Changed)
			assert.Equal(t, s.Head(), res.Commit)
			assert.Equal(t, before+1, s.CommitCount())
		})
	}
}

func TestCreatesFoldersThatDoNotExist(t *testing.T) {
	s := gitrepo.New(t, seed())
	path := "charts/app-config/image-tags/production/new-app"
	_, err := newWriter(s.URL(), nil, nil).Write(context.Background(), path, "", setTo("image_tag: v1\n", "Add"), false)
	require.NoError(t, err)
	got, ok := s.Read(path)
	require.True(t, ok)
	assert.Equal(t, "image_tag: v1\n", got)
	s.Git("fsck", "--strict")
}

func TestDryRunPushesNothing(t *testing.T) {
	s := gitrepo.New(t, seed())
	head := s.Head()
	res, err := newWriter(s.URL(), nil, nil).Write(context.Background(), tagPath, "", setTo("image_tag: v2\n", "Update"), true)
	require.NoError(t, err)
	assert.False(t, res.Changed)
	assert.Contains(t, res.Diff, "+image_tag: v2")
	assert.Equal(t, head, s.Head())
	assert.Equal(t, int64(0), s.Pushes())
}

// The branch moved between our fetch and our push: whatever our store
// knows of the new head, the push's "old to new" update is refused by the
// server under its lock, and the edit is re-applied on the new head, not
// a failure. (Before the push went straight to receive-pack, go-git
// reported the first two cases itself, as "object not found" and
// "non-fast-forward"; movedError still knows those forms.)
func TestReappliesEditWhenBranchMoved(t *testing.T) {
	tests := []struct {
		name  string
		cause string
		// deeper gives the head a parent, which the depth-1 store lacks.
		deeper bool
		// race makes a competing change land after the writer read the file.
		race func(t *testing.T, s *gitrepo.Server, w *Writer)
	}{
		{
			name:   "unknown remote head",
			cause:  "failed to update ref",
			deeper: true,
			race: func(t *testing.T, s *gitrepo.Server, w *Writer) {
				s.Commit("competitor", map[string]string{"charts/app-config/image-tags/staging/router": "image_tag: v8\n"})
			},
		},
		{
			name:  "known remote head",
			cause: "failed to update ref",
			race: func(t *testing.T, s *gitrepo.Server, w *Writer) {
				s.Commit("competitor", map[string]string{"charts/app-config/image-tags/staging/router": "image_tag: v8\n"})
				// The competitor's commit is now in our store too.
				err := w.repo.Fetch(&git.FetchOptions{RemoteName: "origin", Auth: goodAuth, Depth: 1, Tags: git.NoTags,
					RefSpecs: []config.RefSpec{"+refs/heads/main:refs/remotes/spy/main"}})
				require.NoError(t, err)
			},
		},
		{
			name:  "server refuses the ref update (failed to update ref)",
			cause: "failed to update ref",
			race: func(t *testing.T, s *gitrepo.Server, w *Writer) {
				// A competitor's commit lands while our push is being received.
				next := s.Commit("competitor", map[string]string{"charts/app-config/image-tags/staging/router": "image_tag: v8\n"})
				s.Git("update-ref", "refs/heads/main", next+"^")
				s.InstallHook("pre-receive", `[ -f "$GIT_DIR/raced" ] && exit 0
touch "$GIT_DIR/raced"
env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main `+next+"\n")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One seed commit, so the head has no parents and go-git can tell
			// a non-fast-forward from a missing object.
			s := gitrepo.New(t, seed())
			if tt.deeper {
				s.Commit("second", map[string]string{"README.md": "charts, again\n"})
			}
			logs := &syncbuffer.Buffer{}
			w := newWriter(s.URL(), logs, nil)
			calls := 0
			res, err := w.Write(context.Background(), tagPath, "", func(cur Current) (Edit, error) {
				calls++
				if calls == 1 {
					tt.race(t, s, w)
				}
				return Edit{Changed: true, Content: []byte("image_tag: v2\n"), Message: "Update frontend"}, nil
			}, false)
			require.NoError(t, err, logs.String())
			assert.Equal(t, 2, calls, "the edit runs again on the new head")
			assert.Equal(t, 2, res.Attempts)
			assert.Contains(t, logs.String(), tt.cause)
			got, _ := s.Read(tagPath)
			assert.Equal(t, "image_tag: v2\n", got)
			router, _ := s.Read("charts/app-config/image-tags/staging/router")
			assert.Equal(t, "image_tag: v8\n", router, "the competitor's change survives")
			assert.Empty(t, s.EmptyCommits())
		})
	}
}

func TestEditSeesNewStateAfterRace(t *testing.T) {
	s := gitrepo.New(t, seed())
	w := newWriter(s.URL(), nil, nil)
	calls := 0
	res, err := w.Write(context.Background(), tagPath, "", func(cur Current) (Edit, error) {
		calls++
		if calls == 1 {
			s.Commit("someone else did it", map[string]string{tagPath: "image_tag: v2\n"})
		}
		if string(cur.Content) == "image_tag: v2\n" {
			return Edit{Reason: "already there"}, nil
		}
		return Edit{Changed: true, Content: []byte("image_tag: v2\n"), Message: "Update"}, nil
	}, false)
	require.NoError(t, err)
	assert.False(t, res.Changed, "the re-applied edit found the work done")
	assert.Empty(t, s.EmptyCommits())
	assert.Equal(t, 2, s.CommitCount())
}

func TestAttemptsSpent(t *testing.T) {
	s := gitrepo.New(t, seed())
	w := newWriter(s.URL(), nil, func(o *Options) { o.MaxAttempts = 3 })
	n := 0
	_, err := w.Write(context.Background(), tagPath, "", func(cur Current) (Edit, error) {
		n++
		s.Commit("competitor", map[string]string{"README.md": strings.Repeat("x", n)})
		return Edit{Changed: true, Content: []byte("image_tag: v2\n"), Message: "Update"}, nil
	}, false)
	require.ErrorIs(t, err, ErrAttemptsSpent)
	assert.Equal(t, 3, n)
}

func TestBranchStrategy(t *testing.T) {
	s := gitrepo.New(t, seed())
	// A leftover work branch from an earlier failed run.
	s.Git("branch", "update-image-tag/frontend/staging/v2", "main")
	w := newWriter(s.URL(), nil, func(o *Options) { o.Strategy = Branch })
	res, err := w.Write(context.Background(), tagPath, "update-image-tag/frontend/staging/v2", setTo("image_tag: v2\n", "Update"), false)
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.Equal(t, []string{"main"}, s.Branches())
	got, _ := s.Read(tagPath)
	assert.Equal(t, "image_tag: v2\n", got)

	// Failure: the target branch refuses the push; the work branch still goes.
	s.InstallHook("pre-receive", `while read old new ref; do [ "$ref" = refs/heads/main ] && exit 1; done; exit 0`+"\n")
	_, err = newWriter(s.URL(), nil, func(o *Options) { o.Strategy = Branch }).
		Write(context.Background(), tagPath, "update-image-tag/frontend/staging/v3", setTo("image_tag: v3\n", "Update"), false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "push main: ")
	assert.NotErrorIs(t, err, ErrBranchMoved, "a refusal is not a lost race")
	assert.Equal(t, []string{"main"}, s.Branches())
}

// The branch strategy deletes only the work branch this run pushed, and
// only while it still points at this run's commit.
func TestBranchStrategyDeletesOnlyItsOwnWorkBranch(t *testing.T) {
	const work = "update-image-tag/frontend/staging/v2"
	t.Run("a run with nothing to do leaves a branch it did not create", func(t *testing.T) {
		s := gitrepo.New(t, map[string]string{tagPath: "image_tag: v2\n"})
		s.Git("branch", work, "main") // someone else's, e.g. a review in progress
		pushes := s.Pushes()
		res, err := newWriter(s.URL(), nil, func(o *Options) { o.Strategy = Branch }).
			Write(context.Background(), tagPath, work, setTo("image_tag: v2\n", "Update"), false)
		require.NoError(t, err)
		assert.False(t, res.Changed)
		assert.Equal(t, []string{"main", work}, s.Branches())
		assert.Equal(t, pushes, s.Pushes(), "no push at all")
	})
	t.Run("a work branch moved after this run pushed it is left in place", func(t *testing.T) {
		s := gitrepo.New(t, seed())
		seedHead := s.Head()
		// After our work branch lands, another actor points it elsewhere.
		s.InstallHook("post-receive", `while read old new ref; do
  if [ "$ref" = refs/heads/`+work+` ] && [ "$new" != 0000000000000000000000000000000000000000 ] && [ ! -f "$GIT_DIR/moved" ]; then
    touch "$GIT_DIR/moved"
    git update-ref "$ref" `+seedHead+`
  fi
done
exit 0
`)
		logs := &syncbuffer.Buffer{}
		res, err := newWriter(s.URL(), logs, func(o *Options) { o.Strategy = Branch }).
			Write(context.Background(), tagPath, work, setTo("image_tag: v2\n", "Update"), false)
		require.NoError(t, err, logs.String())
		assert.True(t, res.Changed)
		assert.Equal(t, res.Commit, s.Head(), "the change landed")
		assert.Equal(t, []string{"main", work}, s.Branches())
		assert.Equal(t, seedHead, s.Git("rev-parse", "refs/heads/"+work), "the other actor's branch is untouched")
		assert.Contains(t, logs.String(), "work branch moved since this run pushed it; left in place")
	})
	t.Run("a move during the delete is refused by the server", func(t *testing.T) {
		s := gitrepo.New(t, seed())
		seedHead := s.Head()
		// The branch moves while our delete is being received.
		s.InstallHook("pre-receive", `while read old new ref; do
  if [ "$ref" = refs/heads/`+work+` ] && [ "$new" = 0000000000000000000000000000000000000000 ]; then
    env -u GIT_QUARANTINE_PATH git update-ref "$ref" `+seedHead+`
  fi
done
exit 0
`)
		logs := &syncbuffer.Buffer{}
		res, err := newWriter(s.URL(), logs, func(o *Options) { o.Strategy = Branch }).
			Write(context.Background(), tagPath, work, setTo("image_tag: v2\n", "Update"), false)
		require.NoError(t, err, logs.String())
		assert.True(t, res.Changed)
		assert.Equal(t, seedHead, s.Git("rev-parse", "refs/heads/"+work))
		assert.Contains(t, logs.String(), "left in place")
	})
}

func TestRemoteFailures(t *testing.T) {
	s := gitrepo.New(t, seed())
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadURL := "http://" + closed.Addr().String() + "/charts.git"
	require.NoError(t, closed.Close())

	tests := []struct {
		name string
		url  string
		auth transport.AuthMethod
		want error
		msg  string
	}{
		{"wrong password", s.URL(), &gogithttp.BasicAuth{Username: gitrepo.User, Password: "wrong"}, transport.ErrAuthenticationRequired, ""},
		{"no credentials", s.URL(), nil, transport.ErrAuthenticationRequired, ""},
		{"unreachable", deadURL, goodAuth, nil, "connection refused"},
		{"missing repo", s.URL() + "-nope", goodAuth, nil, "fetch main"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := s.Head()
			w := newWriter(tt.url, nil, func(o *Options) { o.Auth = tt.auth })
			_, err := w.Write(context.Background(), tagPath, "", setTo("image_tag: v9\n", "Update"), false)
			require.Error(t, err)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
			}
			assert.Contains(t, err.Error(), tt.msg)
			assert.Equal(t, head, s.Head(), "nothing pushed")
		})
	}

	_, err = newWriter(s.URL(), nil, func(o *Options) { o.Branch = "nope" }).
		Write(context.Background(), tagPath, "", setTo("x", "y"), false)
	assert.ErrorIs(t, err, ErrBranchNotFound)
}

func TestMovedError(t *testing.T) {
	for msg, want := range map[string]bool{
		"object not found":                                       true,
		"non-fast-forward update: refs/heads/main":               true,
		"command error on refs/heads/main: failed to update ref": true,
		"authentication required":                                false,
		"connection refused":                                     false,
	} {
		assert.Equal(t, want, movedError(errors.New(msg)), msg)
	}
	assert.True(t, movedError(git.ErrNonFastForwardUpdate))
}

func TestDefaultBackoffScalesWithAttemptLength(t *testing.T) {
	for i := 0; i < 200; i++ {
		fast := DefaultBackoff(2, 10*time.Millisecond)
		assert.LessOrEqual(t, fast, 55*time.Millisecond)
		slow := DefaultBackoff(6, time.Second)
		assert.LessOrEqual(t, slow, 16*time.Second+5*time.Millisecond)
		assert.GreaterOrEqual(t, slow, 5*time.Millisecond)
	}
}
