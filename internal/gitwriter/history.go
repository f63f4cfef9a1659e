package gitwriter

import (
	"bytes"
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
	// Before is the version this one replaced, as the commit before Commit
	// holds it, when the walk read it before handing this one over (History
	// does; nil on a Cut version, at the root, and from walks that do not
	// look ahead). A reader that only needs to know what came before can
	// stop here, instead of waiting for that version's own setter, which
	// may lie far deeper in the history.
	Before *Version
}

// Version is a file's content at some commit; Exists is false when there
// is no file there.
type Version struct {
	Content []byte
	Exists  bool
}

// ErrHeadNotInHistory is wrapped when the head a decision was made on is
// not among the fetched commits (the branch moved more than the history
// depth since, or was rewritten).
var ErrHeadNotInHistory = errors.New("head not in the fetched history")

// DefaultHistoryDepth is how many commits a history walk fetches by default.
const DefaultHistoryDepth = 500

// DefaultHistoryWindow is the depth of a first history fetch (and of the
// promoter's first fetch): the commit that set a file's current version
// is usually recent, and every commit fetched costs the server work (on
// git http-backend here, about 0.6 ms each: docs/benchmarks.md), so a
// window of the last commits comes first, and more only when a walk runs
// off the end of it.
const DefaultHistoryWindow = 32

// deepenFactor is how much deeper each further history fetch goes.
const deepenFactor = 4

// parent returns c's first parent from the store, fetching the branch's
// history deeper when the walk has run off the end of what the store
// holds (n commits down from the head) and depth allows more; nil at the
// root, or at the end of the branch's last depth commits.
func (s *snapshot) parent(ctx context.Context, c *object.Commit, n, depth int) (*object.Commit, error) {
	if len(c.ParentHashes) == 0 {
		return nil, nil
	}
	for {
		if p := s.commitAt(c.ParentHashes[0]); p != nil {
			return p, nil
		}
		if s.deepest >= depth {
			// The end of the branch's last depth commits as fetched: the
			// head must be among them, or what lies below it is unknown.
			return nil, s.headWithin(depth)
		}
		if err := s.deepen(ctx, min(depth, max(s.w.window(), s.deepest*deepenFactor, 2*n))); err != nil {
			return nil, err
		}
	}
}

// deepen fetches the branch's last depth commits into the store: only
// what it lacks (go-git tells the server which commits it has and where
// its history is cut).
func (s *snapshot) deepen(ctx context.Context, depth int) error {
	tip, err := s.w.fetchInto(ctx, &s.repo, depth, "fetch history of")
	if err != nil {
		return err
	}
	s.deepest, s.tip = depth, tip
	if s.repo == s.w.repo {
		s.w.deepened = true
	}
	s.w.o.Log.Debug("fetched history", "branch", s.w.o.Branch, "depth", depth)
	return nil
}

// headWithin checks that the head is among the last depth commits of the
// tip the store's deepest fetch came from.
func (s *snapshot) headWithin(depth int) error {
	c := s.commitAt(s.tip)
	for n := 0; c != nil && n < depth; n++ {
		if c.Hash == s.commit.Hash {
			return nil
		}
		if len(c.ParentHashes) == 0 {
			break
		}
		c = s.commitAt(c.ParentHashes[0])
	}
	return fmt.Errorf("%w: %s is not within the last %d commits of %s", ErrHeadNotInHistory, s.commit.Hash, depth, s.w.o.Branch)
}

func (s *snapshot) commitAt(hash plumbing.Hash) *object.Commit {
	c, err := s.repo.CommitObject(hash)
	if err != nil {
		return nil
	}
	return c
}

// walk visits path's versions on the first-parent line from commit down,
// through at most depth commits (fewer when the branch moved on since
// commit by more than what was fetched covers).
func walk(ctx context.Context, s *snapshot, commit *object.Commit, path string, depth int, visit func(Revision) bool) error {
	var pending *Revision
	var pendingBlob plumbing.Hash
	for n := 1; commit != nil; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		blob, exists, err := blobAt(commit, path)
		if err != nil {
			return err
		}
		changed := pending == nil || exists != pending.Exists || blob != pendingBlob
		var rev Revision
		if changed {
			rev.Exists = exists
			if exists {
				if rev.Content, err = readBlobAt(s.repo, blob); err != nil {
					return fmt.Errorf("read %s at %s: %w", path, commit.Hash, err)
				}
			}
		}
		if pending != nil && changed {
			// pending's version was set by the commit after this one, and
			// this one holds the version it replaced.
			pending.Before = &Version{Content: bytes.Clone(rev.Content), Exists: rev.Exists}
			if !visit(*pending) {
				return nil
			}
		}
		if changed {
			pending, pendingBlob = &rev, blob
		}
		pending.Commit, pending.When, pending.Message = commit.Hash.String(), commit.Committer.When, commit.Message
		var parent *object.Commit
		if n < depth {
			if parent, err = s.parent(ctx, commit, n, depth); err != nil {
				return err
			}
		}
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

func readBlobAt(repo *git.Repository, hash plumbing.Hash) ([]byte, error) {
	b, err := repo.BlobObject(hash)
	if err != nil {
		return nil, err
	}
	return readBlob(b)
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
