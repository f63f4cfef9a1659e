package promoter

import (
	"time"

	"github.com/slipway-deploy/slipway/internal/bumptag"
	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/promotion"
	"github.com/slipway-deploy/slipway/internal/tagfile"
)

// Revisions is one file's history, newest first, handed to visit until it
// returns false: gitwriter's History at a write's head, or the plan's one
// walk of the whole repo. The readings below are made the same way from
// either, so the plan decides as the promoter does.
type Revisions func(visit func(gitwriter.Revision) bool) error

// tagOf is the tag a revision holds, "" for none (absent or malformed).
func tagOf(keys tagfile.Keys, r gitwriter.Revision) string {
	return versionTag(keys, gitwriter.Version{Content: r.Content, Exists: r.Exists})
}

// beforeTag is the tag of the version r replaced, and whether the walk
// said what that version was (r.Before).
func beforeTag(keys tagfile.Keys, r gitwriter.Revision) (string, bool) {
	if r.Before == nil {
		return "", false
	}
	return versionTag(keys, *r.Before), true
}

func versionTag(keys tagfile.Keys, v gitwriter.Version) string {
	if !v.Exists {
		return ""
	}
	f, err := tagfile.Parse(v.Content, keys)
	if err != nil {
		return ""
	}
	tag, _ := f.Tag()
	return tag
}

// TagSetAt returns when the commit that set tag landed: the oldest of the
// newest run of versions holding it (edits that keep the tag do not
// restart it). Zero when the newest version does not hold tag. It stops
// at the version that set tag when the revision says what came before
// (Before): the history read goes no deeper than that commit's parent.
func TagSetAt(keys tagfile.Keys, tag string, revs Revisions) (time.Time, error) {
	var when time.Time
	err := revs(func(r gitwriter.Revision) bool {
		if tagOf(keys, r) != tag {
			return false
		}
		when = r.When
		before, known := beforeTag(keys, r)
		return !known || before == tag
	})
	return when, err
}

// RolledBackFrom returns the rollbacks that led to the file's current tag,
// newest first: if the commit that set the current tag was a rollback
// (bumptag's Slipway-Rollback-From trailer), the tag it left, and so on
// back while each tag before was itself set by a rollback. A tag set by
// any other commit (a release, a promotion, a person's deploy) ends it:
// rollbacks before it no longer hold. A setter beyond the fetched history
// is unknown and ends it too. When the revisions say what each replaced
// (Before), the read stops at the commit that ends it: usually the one
// that set the current tag, whose parent is as deep as the history read
// then goes, however far back the version before it was set.
func RolledBackFrom(keys tagfile.Keys, revs Revisions) ([]promotion.Rollback, error) {
	var out []promotion.Rollback
	var run string                // the tag of the run of versions being read
	var setter gitwriter.Revision // its oldest version so far: the one that set it
	started, ended := false, false
	rollback := func() (string, bool) {
		from, ok := bumptag.RollbackFrom(setter.Message)
		return from, ok && !setter.Cut
	}
	// closeRun decides, from the run's setter, whether the run before it
	// still counts.
	closeRun := func() bool {
		from, ok := rollback()
		if !ok {
			ended = true
			return false
		}
		out = append(out, promotion.Rollback{From: from, When: setter.When})
		return true
	}
	err := revs(func(r gitwriter.Revision) bool {
		tag := tagOf(keys, r)
		if tag == "" {
			ended = true
			return false
		}
		if started && tag != run && !closeRun() {
			return false
		}
		if !started || tag != run {
			run, started = tag, true
		}
		setter = r
		// What the next revision will decide, known now from the version
		// this one replaced: no tag before it, or another tag after a
		// setter that was no rollback, ends the chain.
		if before, known := beforeTag(keys, r); known {
			if _, rolledBack := rollback(); before == "" || (before != run && !rolledBack) {
				ended = true
				return false
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if started && !ended {
		closeRun()
	}
	return out, nil
}
