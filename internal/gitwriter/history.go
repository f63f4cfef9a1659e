package gitwriter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// ReadFiles fetches the branch once and returns each path's content at the
// same head, so that decisions about several files see one state.
func (w *Writer) ReadFiles(ctx context.Context, paths ...string) ([]Current, error) {
	if err := w.fetch(ctx); err != nil {
		return nil, err
	}
	out := make([]Current, len(paths))
	for i, p := range paths {
		cur, _, err := w.read(p)
		if err != nil {
			return nil, err
		}
		out[i] = cur
	}
	return out, nil
}

// ReuseNextFetch makes the next Write's first attempt start from the head
// the last Read or ReadFiles fetched instead of fetching again: one network
// round trip less for a caller that has just read the branch to decide.
// It is safe: a push built on a head that moved meanwhile is rejected, and
// the retry fetches the new head and re-applies the edit, as always.
func (w *Writer) ReuseNextFetch() { w.reuse = true }

// Revision is one version of a file in its history.
type Revision struct {
	Commit  string
	When    time.Time // committer time
	Content []byte
	Exists  bool
}

// FileHistory fetches the last depth commits of the branch into a separate
// in-memory store (the writer's depth-1 store is left as it is) and calls
// visit with path's content at each commit on the first-parent line, newest
// first, until visit returns false or the fetched history ends. Consecutive
// commits that did not touch path are skipped: visit sees the commit that
// last set each version (within the fetched depth; when the oldest fetched
// commit still holds a version, that commit is what visit sees, so callers
// get a time no earlier than the real one).
func (w *Writer) FileHistory(ctx context.Context, path string, depth int, visit func(Revision) bool) error {
	if depth <= 0 {
		depth = 500
	}
	repo, err := git.Init(memory.NewStorage(), nil)
	if err != nil {
		return err
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{w.o.URL}}); err != nil {
		return err
	}
	spec := config.RefSpec(fmt.Sprintf("+refs/heads/%s:%s", w.o.Branch, w.remoteRef()))
	err = w.withNetworkRetry(ctx, "fetch history", func() error {
		err := repo.FetchContext(ctx, &git.FetchOptions{
			RemoteName: "origin", RefSpecs: []config.RefSpec{spec}, Depth: depth,
			Tags: git.NoTags, Auth: w.o.Auth, Force: true,
		})
		if errors.Is(err, git.NoErrAlreadyUpToDate) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("fetch history of %s from %s: %w", w.o.Branch, w.o.URL, err)
	}
	ref, err := repo.Reference(w.remoteRef(), true)
	if err != nil {
		return fmt.Errorf("fetch history of %s: %w", w.o.Branch, err)
	}
	commit, err := repo.CommitObject(ref.Hash())
	if err != nil {
		return fmt.Errorf("read %s: %w", ref.Hash(), err)
	}
	var pending *Revision
	var pendingBlob plumbing.Hash
	for commit != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		blob, exists, err := blobAt(commit, path)
		if err != nil {
			return err
		}
		if pending != nil && (exists != pending.Exists || blob != pendingBlob) {
			// pending's version was set by the commit after this one.
			if !visit(*pending) {
				return nil
			}
			pending = nil
		}
		if pending == nil {
			rev := Revision{Exists: exists}
			if exists {
				b, err := repo.BlobObject(blob)
				if err != nil {
					return fmt.Errorf("read %s at %s: %w", path, commit.Hash, err)
				}
				if rev.Content, err = readBlob(b); err != nil {
					return fmt.Errorf("read %s at %s: %w", path, commit.Hash, err)
				}
			}
			pending, pendingBlob = &rev, blob
		}
		pending.Commit, pending.When = commit.Hash.String(), commit.Committer.When
		commit = firstParent(repo, commit)
	}
	if pending != nil {
		visit(*pending)
	}
	return nil
}

// firstParent returns commit's first parent, or nil at the root or at the
// shallow boundary (the parent was not fetched).
func firstParent(repo *git.Repository, c *object.Commit) *object.Commit {
	if len(c.ParentHashes) == 0 {
		return nil
	}
	p, err := repo.CommitObject(c.ParentHashes[0])
	if err != nil {
		return nil
	}
	return p
}

func blobAt(c *object.Commit, path string) (plumbing.Hash, bool, error) {
	tree, err := c.Tree()
	if err != nil {
		return plumbing.ZeroHash, false, fmt.Errorf("read tree of %s: %w", c.Hash, err)
	}
	e, err := tree.FindEntry(path)
	switch {
	case errors.Is(err, object.ErrEntryNotFound), errors.Is(err, object.ErrDirectoryNotFound), errors.Is(err, object.ErrFileNotFound):
		return plumbing.ZeroHash, false, nil
	case err != nil:
		return plumbing.ZeroHash, false, fmt.Errorf("read %s at %s: %w", path, c.Hash, err)
	}
	return e.Hash, true, nil
}

func readBlob(b *object.Blob) ([]byte, error) {
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
