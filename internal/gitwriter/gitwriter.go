// Package gitwriter changes one file in a git repository's branch and pushes
// the change without ever losing a concurrent writer's update.
//
// It works on a bare, in-memory, depth-1 copy of one branch (no work tree:
// the file is read from the head tree and the new commit is built from tree
// objects). When a push is rejected because the branch moved, it fetches
// only the new head into the same store, re-runs the caller's edit against
// the new content (so idempotence and downgrade checks see the new state),
// and pushes again, with jittered backoff and a bounded number of attempts.
// The edit can read any other file, and the history, at the same head
// (Current.Read, Current.History): a decision that depends on several
// files is made again against exactly the head the commit is pushed onto.
// A caller whose edit reads the history has the first fetch bring the
// last few commits too (Options.HistoryWindow); History fetches deeper
// into the same store only when a walk needs it.
package gitwriter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Strategy is how a commit reaches the target branch.
type Strategy string

const (
	// Direct pushes the commit to the target branch.
	Direct Strategy = "direct"
	// Branch pushes the commit to a work branch, merges it into the target
	// branch (a fast-forward push: the commit is built on the target's head)
	// and deletes the work branch, as the reference user's script does.
	Branch Strategy = "branch"
)

// DefaultMaxAttempts bounds a write's push attempts when Options do not.
const DefaultMaxAttempts = 20

// ErrBranchMoved is wrapped when a push lost the race to another writer.
var ErrBranchMoved = errors.New("branch moved")

// ErrAttemptsSpent is wrapped when every attempt lost the race.
var ErrAttemptsSpent = errors.New("conflict budget spent")

// ErrBranchNotFound is wrapped when the target branch does not exist.
var ErrBranchNotFound = errors.New("branch not found")

// Options configure a Writer.
type Options struct {
	URL         string
	Auth        transport.AuthMethod
	Branch      string // target branch, default main
	Strategy    Strategy
	AuthorName  string
	AuthorEmail string
	// MaxAttempts bounds the push attempts (default 20: with 50 writers
	// racing on one branch, the unluckiest needs about 10).
	MaxAttempts int
	// NetworkAttempts bounds retries of a fetch or push that failed for a
	// network reason (default 3).
	NetworkAttempts int
	// Backoff returns the wait before attempt n (n >= 2), given how long the
	// last attempt took; default DefaultBackoff.
	Backoff func(attempt int, last time.Duration) time.Duration
	// HistoryWindow, when > 0, is the depth of the first fetch (default
	// 1), for a caller whose edit reads the history (the promoter): the
	// last commits come with the fetch a write makes anyway, and History
	// fetches only what lies deeper, when a walk needs it (a first
	// history fetch is this deep too; default DefaultHistoryWindow).
	HistoryWindow int
	Log           *slog.Logger
	Now           func() time.Time
}

// Current is the file as the edit sees it.
type Current struct {
	Content []byte
	Exists  bool
	Head    string // the commit it was read from
	at      *snapshot
}

// snapshot is the head a Current was read from, in the store it was
// fetched into (the writer's; History fetches deeper history into it).
type snapshot struct {
	commit *object.Commit
	w      *Writer
	repo   *git.Repository
	// deepest is the depth of the deepest fetch into repo known to hold
	// the head's history that deep: the first fetch into a new store, or
	// one History made; 0 when the head came with a later fetch, which
	// brings only the commits since the last head. tip is the branch head
	// that fetch brought.
	deepest int
	tip     plumbing.Hash
}

// ErrNoHead is returned by Read and History on a Current that was not read
// from a head (one built by hand).
var ErrNoHead = errors.New("not read from a fetched head")

// Read returns another file as it is at the same head as c.
func (c Current) Read(path string) (Current, error) {
	if c.at == nil {
		return Current{}, fmt.Errorf("read %s: %w", path, ErrNoHead)
	}
	return c.at.read(path)
}

// History calls visit with path's versions on the first-parent line that
// ends at c's head, newest first, until visit returns false or the history
// read ends, so that what it finds holds for exactly that head.
// Consecutive commits that did not touch path are skipped: visit sees the
// commit that last set each version, and the version before it (Before).
// The history read is the branch's last depth commits (default 500): when
// the oldest one still holds a version, that commit is what visit sees,
// Cut, so callers get a time no earlier than the real one. The walk reads
// the store c was fetched into, and fetches deeper history into it only
// when it runs off the end of what the store holds before visit is done:
// a window of commits first (or none, when the write's own fetch brought
// them: Options.HistoryWindow), then four times deeper each time, up to
// depth. A head that is no longer among the branch's last depth commits
// when that depth is fetched is an error (ErrHeadNotInHistory).
func (c Current) History(ctx context.Context, path string, depth int, visit func(Revision) bool) error {
	if c.at == nil {
		return fmt.Errorf("history of %s: %w", path, ErrNoHead)
	}
	if depth <= 0 {
		depth = DefaultHistoryDepth
	}
	return walk(ctx, c.at, c.at.commit, path, depth, visit)
}

// Edit is what an EditFunc decides.
type Edit struct {
	// Changed false means nothing to do: no commit, success.
	Changed bool
	Content []byte
	Message string
	// Reason says why, in a few words, for logs and outputs.
	Reason string
}

// EditFunc computes the new content from the current one. It runs again
// after every lost race, against the new head. An error stops the write.
type EditFunc func(cur Current) (Edit, error)

// Result reports a write.
type Result struct {
	Changed  bool
	Commit   string // the new commit, or the head that already had the change
	Previous Current
	Edit     Edit
	Attempts int
	// Diff is the unified diff of the change (set on dry runs and writes).
	Diff string
}

// Writer writes to one repository branch.
type Writer struct {
	o    Options
	repo *git.Repository
	// deepened is set when History fetched deeper history into repo: the
	// store is dropped after the write rather than kept that large.
	deepened bool
}

// New returns a Writer; nothing touches the network until Write or Read.
func New(o Options) *Writer {
	if o.Branch == "" {
		o.Branch = "main"
	}
	if o.Strategy == "" {
		o.Strategy = Direct
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.NetworkAttempts <= 0 {
		o.NetworkAttempts = 3
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AuthorName == "" {
		o.AuthorName = "Slipway"
	}
	if o.AuthorEmail == "" {
		o.AuthorEmail = "slipway@localhost"
	}
	return &Writer{o: o}
}

// DefaultBackoff waits a random time (full jitter) in a window that starts
// at the length of the last attempt and doubles each time, up to 8 times
// it. Scaling by the attempt's own length spreads racing writers over
// about as many attempt-lengths as there are writers, whatever the speed
// of the server: on a quick one the waits are short, on a loaded one they
// grow. The cap keeps the unluckiest writer's waits short: with 50 writers
// racing, 16 times cut the retries by a few percent but doubled the
// slowest writer's time (docs/benchmarks.md).
func DefaultBackoff(attempt int, last time.Duration) time.Duration {
	base := max(last, 50*time.Millisecond)
	limit := base << min(max(attempt-2, 0), 3)
	return time.Duration(rand.Int64N(int64(limit))) + 5*time.Millisecond
}

func (w *Writer) remoteRef() plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName("origin", w.o.Branch)
}

// refetchDepth is the depth of every fetch after a store's first. A
// depth-1 fetch onto a depth-1 store makes git's upload-pack send the
// head's whole tree again (every tag file of every app: 170 KiB for 3,000
// files), because the new shallow boundary hides what the old head holds;
// a deeper one reaches back to the head the store has, and the server
// sends only the commits since and what they changed (25 KiB). More
// commits than this since the last fetch cost one whole tree again.
const refetchDepth = 64

// window is the depth of a first history fetch.
func (w *Writer) window() int {
	if w.o.HistoryWindow > 0 {
		return w.o.HistoryWindow
	}
	return DefaultHistoryWindow
}

// fetch brings the branch head into the in-memory store (a depth-1 fetch,
// or HistoryWindow deep, the first time; then only what moved) and
// returns it, for reading files, and the history, at it.
func (w *Writer) fetch(ctx context.Context) (*snapshot, error) {
	depth := max(1, w.o.HistoryWindow)
	deepest := depth
	if w.repo != nil {
		depth, deepest = refetchDepth, 0
	}
	head, err := w.fetchInto(ctx, &w.repo, depth, "fetch")
	if err != nil {
		return nil, err
	}
	commit, err := w.repo.CommitObject(head)
	if err != nil {
		return nil, fmt.Errorf("read head %s: %w", head, err)
	}
	return &snapshot{commit: commit, w: w, repo: w.repo, deepest: deepest, tip: head}, nil
}

// newStore returns an empty in-memory repository with the remote "origin".
func (w *Writer) newStore() (*git.Repository, error) {
	repo, err := git.Init(memory.NewStorage(), nil)
	if err != nil {
		return nil, err
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{w.o.URL}}); err != nil {
		return nil, err
	}
	return repo, nil
}

// fetchInto fetches the last depth commits of the branch into *store (a
// new in-memory repository the first time) and returns the branch head.
func (w *Writer) fetchInto(ctx context.Context, store **git.Repository, depth int, what string) (plumbing.Hash, error) {
	if *store == nil {
		repo, err := w.newStore()
		if err != nil {
			return plumbing.ZeroHash, err
		}
		*store = repo
	}
	repo := *store
	spec := config.RefSpec(fmt.Sprintf("+refs/heads/%s:%s", w.o.Branch, w.remoteRef()))
	err := w.withNetworkRetry(ctx, what, func() error {
		err := repo.FetchContext(ctx, &git.FetchOptions{
			RemoteName: "origin", RefSpecs: []config.RefSpec{spec}, Depth: depth,
			Tags: git.NoTags, Auth: w.o.Auth, Force: true,
		})
		if errors.Is(err, git.NoErrAlreadyUpToDate) {
			return nil
		}
		return err
	})
	var noRef git.NoMatchingRefSpecError
	switch {
	case errors.As(err, &noRef), errors.Is(err, transport.ErrEmptyRemoteRepository):
		return plumbing.ZeroHash, fmt.Errorf("%w: %q in %s", ErrBranchNotFound, w.o.Branch, w.o.URL)
	case err != nil:
		return plumbing.ZeroHash, fmt.Errorf("%s %s from %s: %w", what, w.o.Branch, w.o.URL, err)
	}
	ref, err := repo.Reference(w.remoteRef(), true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("%s %s: %w", what, w.o.Branch, err)
	}
	return ref.Hash(), nil
}

// withNetworkRetry retries fn when it failed for a reason a retry can fix
// (connection refused or reset, timeouts, a 5xx); auth and "not found"
// errors return at once.
func (w *Writer) withNetworkRetry(ctx context.Context, what string, fn func() error) error {
	var err error
	for attempt := 1; attempt <= w.o.NetworkAttempts; attempt++ {
		if err = fn(); err == nil || !transient(err) {
			return err
		}
		if attempt < w.o.NetworkAttempts {
			w.o.Log.Warn("git "+what+" failed, retrying", "attempt", attempt, "error", err.Error())
			if werr := sleep(ctx, time.Duration(attempt)*200*time.Millisecond); werr != nil {
				return werr
			}
		}
	}
	return err
}

func transient(err error) bool {
	if errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) ||
		errors.Is(err, transport.ErrRepositoryNotFound) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset", "timeout", "EOF", "broken pipe",
		"502", "503", "504", "500 Internal", "no such host", "i/o timeout", "unexpected EOF"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// read returns path's content at the snapshot's head.
func (s *snapshot) read(path string) (Current, error) {
	cur := Current{Head: s.commit.Hash.String(), at: s}
	tree, err := s.commit.Tree()
	if err != nil {
		return cur, fmt.Errorf("read tree of %s: %w", cur.Head, err)
	}
	f, err := tree.File(path)
	switch {
	case errors.Is(err, object.ErrFileNotFound), errors.Is(err, object.ErrDirectoryNotFound):
		return cur, nil
	case err != nil:
		return cur, fmt.Errorf("read %s: %w", path, err)
	}
	content, err := f.Contents()
	if err != nil {
		return cur, fmt.Errorf("read %s: %w", path, err)
	}
	cur.Content, cur.Exists = []byte(content), true
	return cur, nil
}

// Read fetches the branch and returns path's current content; the
// Current reads other files, and the history, at that same head.
func (w *Writer) Read(ctx context.Context, path string) (Current, error) {
	at, err := w.fetch(ctx)
	if err != nil {
		return Current{}, err
	}
	return at.read(path)
}

// Write applies edit to path and pushes it (or, with dryRun, only computes
// the diff). workBranch names the work branch of the Branch strategy.
func (w *Writer) Write(ctx context.Context, path, workBranch string, edit EditFunc, dryRun bool) (res Result, err error) {
	// Deferred first, so that it runs last: deleting the work branch uses
	// the store.
	defer w.dropDeepened()
	// pushed is the last commit this run pushed to the work branch: the only
	// one it may delete.
	var pushed plumbing.Hash
	if w.o.Strategy == Branch {
		if workBranch == "" {
			return res, fmt.Errorf("the branch strategy needs a work branch name")
		}
		if !dryRun {
			defer w.dropWorkBranch(ctx, workBranch, &pushed, &err)
		}
	}
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		started := time.Now()
		at, err := w.fetch(ctx)
		if err != nil {
			return res, err
		}
		fetched := time.Now()
		cur, err := at.read(path)
		if err != nil {
			return res, err
		}
		e, err := edit(cur)
		if err != nil {
			return res, err
		}
		res.Previous, res.Edit, res.Commit = cur, e, cur.Head
		if !e.Changed {
			return res, nil
		}
		b, err := w.commit(at.commit, path, e)
		if err != nil {
			return res, err
		}
		commit := b.commit
		if dryRun {
			res.Diff, err = w.diff(at.commit, commit)
			return res, err
		}
		if w.o.Strategy == Branch {
			if err := w.pushWork(ctx, commit, workBranch); err != nil {
				return res, err
			}
			pushed = commit
		}
		built := time.Now()
		err = w.pushTarget(ctx, at.commit.Hash, b)
		// Where an attempt's time goes, for a slow write's log.
		took := []any{"fetch", fetched.Sub(started).Round(time.Millisecond).String(),
			"edit", built.Sub(fetched).Round(time.Millisecond).String(), "push", time.Since(built).Round(time.Millisecond).String()}
		if err == nil {
			res.Changed, res.Commit = true, commit.String()
			w.o.Log.Debug("pushed", append([]any{"branch", w.o.Branch, "attempt", attempt}, took...)...)
			res.Diff, err = w.diff(at.commit, commit) // after the push: not in the race's window
			return res, err
		}
		if err := w.lost(ctx, attempt, time.Since(started), err, took); err != nil {
			return res, err
		}
	}
}

// dropDeepened drops the store when History fetched deeper history into
// it: the next write fetches anew rather than keep hundreds of commits.
func (w *Writer) dropDeepened() {
	if w.deepened {
		w.repo, w.deepened = nil, false
	}
}

// dropWorkBranch deletes the work branch this run pushed (*pushed, if
// any), on success or failure; failing to is the write's error when it
// had none.
func (w *Writer) dropWorkBranch(ctx context.Context, name string, pushed *plumbing.Hash, err *error) {
	if pushed.IsZero() {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if derr := w.deleteWorkBranch(cctx, name, *pushed); derr != nil && *err == nil {
		*err = derr
	}
}

// lost handles a push that failed after an attempt of length took: a lost
// race waits its backoff (nil: try again); anything else, or a race lost
// once too often, is the write's error.
func (w *Writer) lost(ctx context.Context, attempt int, length time.Duration, err error, took []any) error {
	if !errors.Is(err, ErrBranchMoved) {
		return err
	}
	if attempt >= w.o.MaxAttempts {
		return fmt.Errorf("push to %s: %w: lost the race %d times: %v", w.o.Branch, ErrAttemptsSpent, attempt, err)
	}
	wait := w.o.Backoff(attempt+1, length)
	w.o.Log.Info("branch moved under us; re-applying the edit on the new head", append([]any{
		"branch", w.o.Branch, "attempt", attempt, "wait", wait.Round(time.Millisecond).String(),
		"cause", err.Error()}, took...)...)
	return sleep(ctx, wait)
}

// pushWork force-pushes commit to the Branch strategy's work branch: a
// leftover of the same name is replaced, and from then on it is this run's
// to delete.
func (w *Writer) pushWork(ctx context.Context, commit plumbing.Hash, workBranch string) error {
	local := plumbing.NewBranchReferenceName("slipway-push")
	if err := w.repo.Storer.SetReference(plumbing.NewHashReference(local, commit)); err != nil {
		return err
	}
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", local, plumbing.NewBranchReferenceName(workBranch)))
	if err := w.pushSpec(ctx, spec); err != nil {
		return fmt.Errorf("push work branch %s: %w", workBranch, err)
	}
	w.o.Log.Debug("pushed work branch", "branch", workBranch, "commit", commit.String())
	return nil
}

// pushTarget moves the target branch from old, the head the commit was
// built on, to the new commit, in one request: the commit and the objects
// it added, and the update "old to new", which the server applies only if
// the branch still points at old (under its lock). There is no ref
// advertisement first (the head is known: it was just fetched) and no
// walk of the tree to work out what to send (the commit's own objects are
// all the server lacks): the window in which another writer can move the
// branch is as short as one round trip.
func (w *Writer) pushTarget(ctx context.Context, old plumbing.Hash, b built) error {
	err := w.withNetworkRetry(ctx, "push", func() error {
		return w.receivePack(ctx, plumbing.NewBranchReferenceName(w.o.Branch), old, b)
	})
	if err != nil {
		if movedError(err) {
			return fmt.Errorf("push %s: %w (%v)", w.o.Branch, ErrBranchMoved, err)
		}
		return fmt.Errorf("push %s: %w", w.o.Branch, err)
	}
	return nil
}

func (w *Writer) receivePack(ctx context.Context, ref plumbing.ReferenceName, old plumbing.Hash, b built) error {
	ep, err := transport.NewEndpoint(w.o.URL)
	if err != nil {
		return err
	}
	c, err := client.NewClient(ep)
	if err != nil {
		return err
	}
	s, err := c.NewReceivePackSession(ep, w.o.Auth)
	if err != nil {
		return err
	}
	defer s.Close()
	var pack bytes.Buffer
	if _, err := packfile.NewEncoder(&pack, w.repo.Storer, false).Encode(b.objects, 0); err != nil {
		return fmt.Errorf("pack the commit: %w", err)
	}
	req := packp.NewReferenceUpdateRequest()
	if err := req.Capabilities.Set(capability.ReportStatus); err != nil {
		return err
	}
	req.Commands = []*packp.Command{{Name: ref, Old: old, New: b.commit}}
	req.Packfile = io.NopCloser(&pack)
	rs, err := s.ReceivePack(ctx, req)
	if err != nil {
		return err
	}
	if rs == nil {
		return errors.New("the server sent no report on the push")
	}
	return rs.Error()
}

func (w *Writer) pushSpec(ctx context.Context, spec config.RefSpec) error {
	return w.withNetworkRetry(ctx, "push", func() error {
		err := w.repo.PushContext(ctx, &git.PushOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{spec}, Auth: w.o.Auth})
		if errors.Is(err, git.NoErrAlreadyUpToDate) {
			return nil
		}
		return err
	})
}

// movedError recognises "the branch moved" in each form go-git reports it:
// with a shallow store the remote's new head is unknown, so the
// fast-forward check fails with "object not found"; with the head known it
// is a non-fast-forward; and when another push lands between the
// advertisement and ours, the server refuses to update the ref.
func movedError(err error) bool {
	if errors.Is(err, plumbing.ErrObjectNotFound) || errors.Is(err, git.ErrNonFastForwardUpdate) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"non-fast-forward", "object not found", "failed to update ref",
		"failed to lock", "fetch first", "stale info", "reference already exists", "cannot lock ref"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// deleteWorkBranch deletes the work branch only while it still points at
// ours, the commit this run pushed to it: a branch someone else created, or
// moved since, is left in place. The server checks the old value again
// under its lock, so a move between the look and the delete is refused.
func (w *Writer) deleteWorkBranch(ctx context.Context, name string, ours plumbing.Hash) error {
	ref := plumbing.NewBranchReferenceName(name)
	now, err := w.remoteHash(ctx, ref)
	if err != nil {
		return fmt.Errorf("delete work branch %s: %w", name, err)
	}
	if now != ours {
		w.leftInPlace(name, ours, now)
		return nil
	}
	err = w.withNetworkRetry(ctx, "delete work branch", func() error {
		return w.repo.PushContext(ctx, &git.PushOptions{RemoteName: "origin", Auth: w.o.Auth,
			RefSpecs:          []config.RefSpec{config.RefSpec(":" + ref.String())},
			RequireRemoteRefs: []config.RefSpec{config.RefSpec(ours.String() + ":" + ref.String())}})
	})
	if err == nil {
		return nil
	}
	// Refused: if the branch moved meanwhile, it is someone else's now.
	if now, lerr := w.remoteHash(ctx, ref); lerr == nil && now != ours {
		w.leftInPlace(name, ours, now)
		return nil
	}
	return fmt.Errorf("delete work branch %s: %w", name, err)
}

func (w *Writer) leftInPlace(name string, ours, now plumbing.Hash) {
	if now.IsZero() {
		return // already gone
	}
	w.o.Log.Warn("work branch moved since this run pushed it; left in place",
		"branch", name, "pushed", ours.String(), "now", now.String())
}

// remoteHash returns where ref points on the remote, zero when absent.
func (w *Writer) remoteHash(ctx context.Context, ref plumbing.ReferenceName) (plumbing.Hash, error) {
	remote, err := w.repo.Remote("origin")
	if err != nil {
		return plumbing.ZeroHash, err
	}
	var refs []*plumbing.Reference
	err = w.withNetworkRetry(ctx, "list refs", func() error {
		var lerr error
		refs, lerr = remote.ListContext(ctx, &git.ListOptions{Auth: w.o.Auth})
		return lerr
	})
	if err != nil {
		return plumbing.ZeroHash, err
	}
	for _, r := range refs {
		if r.Name() == ref {
			return r.Hash(), nil
		}
	}
	return plumbing.ZeroHash, nil
}
