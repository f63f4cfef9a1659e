package gitwriter

import (
	"context"
	"errors"
	"fmt"
	"io"
	pathpkg "path"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Revision is one version of a file in its history.
type Revision struct {
	// Commit set this version (When is its committer time, Message its
	// message, trailers included).
	Commit  string
	When    time.Time
	Message string
	Content []byte
	Exists  bool
	// Cut is true when the version was set before the fetched history:
	// Commit is then the oldest fetched commit, When no earlier than the
	// real time, and Message empty (the setter is unknown).
	Cut bool
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
		pending.Commit, pending.When, pending.Message = commit.Hash.String(), commit.Committer.When, commit.Message
		parent := firstParent(repo, commit)
		if parent == nil && len(commit.ParentHashes) > 0 {
			pending.Cut, pending.Message = true, "" // the shallow boundary, not the root
		}
		commit = parent
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

// blobAt returns the blob of the file at path in c's tree; exists is false
// when there is none (no such entry, a folder there, or a file where a
// folder on the way should be).
func blobAt(c *object.Commit, path string) (blob plumbing.Hash, exists bool, err error) {
	tree, err := c.Tree()
	if err != nil {
		return plumbing.ZeroHash, false, fmt.Errorf("read tree of %s: %w", c.Hash, err)
	}
	dir, base := pathpkg.Split(path)
	if dir != "" {
		tree, err = tree.Tree(strings.TrimSuffix(dir, "/"))
		if errors.Is(err, object.ErrDirectoryNotFound) {
			return plumbing.ZeroHash, false, nil
		}
		if err != nil {
			return plumbing.ZeroHash, false, fmt.Errorf("read %s at %s: %w", path, c.Hash, err)
		}
	}
	e, err := tree.FindEntry(base)
	switch {
	case errors.Is(err, object.ErrEntryNotFound), errors.Is(err, object.ErrDirectoryNotFound), errors.Is(err, object.ErrFileNotFound):
		return plumbing.ZeroHash, false, nil
	case err != nil:
		return plumbing.ZeroHash, false, fmt.Errorf("read %s at %s: %w", path, c.Hash, err)
	case !e.Mode.IsFile():
		return plumbing.ZeroHash, false, nil // a folder (or a submodule) is no version of a file
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
