package gitwriter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Revision is one version of a file in its history.
type Revision struct {
	Commit  string
	When    time.Time // committer time
	Content []byte
	Exists  bool
}

// ErrHeadNotInHistory is wrapped when the head a decision was made on is
// not among the fetched commits (the branch moved more than the history
// depth since, or was rewritten).
var ErrHeadNotInHistory = errors.New("head not in the fetched history")

// DefaultHistoryDepth is how many commits a history walk fetches by default.
const DefaultHistoryDepth = 500

// history is a store of the branch's last commits, separate from the
// writer's depth-1 store.
type history struct {
	w    *Writer
	repo *git.Repository
}

// at returns the commit head from the store, fetching the branch's last
// depth commits when head is not there yet.
func (h *history) at(ctx context.Context, head plumbing.Hash, depth int) (*object.Commit, error) {
	if depth <= 0 {
		depth = DefaultHistoryDepth
	}
	if h.repo != nil {
		if c, err := h.repo.CommitObject(head); err == nil {
			return c, nil
		}
	}
	if _, err := h.w.fetchInto(ctx, &h.repo, depth, "fetch history of"); err != nil {
		return nil, err
	}
	c, err := h.repo.CommitObject(head)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not within the last %d commits of %s", ErrHeadNotInHistory, head, depth, h.w.o.Branch)
	}
	return c, nil
}

// walk visits path's versions on the first-parent line from commit down.
func walk(ctx context.Context, repo *git.Repository, commit *object.Commit, path string, visit func(Revision) bool) error {
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
