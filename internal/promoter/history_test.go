package promoter

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/promotion"
	"github.com/slipway-deploy/slipway/internal/tagfile"
)

// revs is a file's history, newest first, as History hands it out.
func revs(list ...gitwriter.Revision) Revisions {
	return func(visit func(gitwriter.Revision) bool) error {
		for _, r := range list {
			if !visit(r) {
				return nil
			}
		}
		return nil
	}
}

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func rev(hour int, tag, msg string) gitwriter.Revision {
	r := gitwriter.Revision{When: t0.Add(time.Duration(hour) * time.Hour), Message: msg, Exists: tag != ""}
	if tag != "" {
		r.Content = []byte("image_tag: " + tag + "\n")
	}
	return r
}

// withBefore is list as gitwriter's History hands it out: each version
// says what it replaced (the next one down), except the oldest and a cut
// one.
func withBefore(list []gitwriter.Revision) []gitwriter.Revision {
	out := append([]gitwriter.Revision(nil), list...)
	for i := range out {
		if i+1 < len(out) && !out[i].Cut {
			out[i].Before = &gitwriter.Version{Content: out[i+1].Content, Exists: out[i+1].Exists}
		}
	}
	return out
}

// counted is revs that counts the versions visited.
func counted(list []gitwriter.Revision, n *int) Revisions {
	return func(visit func(gitwriter.Revision) bool) error {
		for _, r := range list {
			*n++
			if !visit(r) {
				return nil
			}
		}
		return nil
	}
}

func rollback(from string) string {
	return "Roll back\n\nSlipway-Previous-Tag: " + from + "\nSlipway-Rollback: true\nSlipway-Rollback-From: " + from + "\n"
}

// The rollbacks that led to the current tag, and only those: a rollback
// chain is followed back; any other commit that set a tag ends it.
func TestRolledBackFrom(t *testing.T) {
	for _, tc := range []struct {
		name string
		revs []gitwriter.Revision
		want []promotion.Rollback
	}{
		{"no history", nil, nil},
		{"a release", []gitwriter.Revision{rev(2, "v42", "Promote"), rev(1, "v41", "Promote")}, nil},
		{"rolled back from v42", []gitwriter.Revision{rev(3, "v40", rollback("v42")), rev(2, "v42", "Promote"), rev(1, "v40", "Promote")},
			[]promotion.Rollback{{From: "v42", When: t0.Add(3 * time.Hour)}}},
		{"an edit after the rollback keeps it", []gitwriter.Revision{rev(4, "v40", "comment"), rev(3, "v40", rollback("v42")), rev(2, "v42", "Promote")},
			[]promotion.Rollback{{From: "v42", When: t0.Add(3 * time.Hour)}}},
		{"two rollbacks in a row", []gitwriter.Revision{rev(4, "v40", rollback("v41")), rev(3, "v41", rollback("v42")), rev(2, "v42", "Promote")},
			[]promotion.Rollback{{From: "v41", When: t0.Add(4 * time.Hour)}, {From: "v42", When: t0.Add(3 * time.Hour)}}},
		{"a person deployed since: the rollback no longer holds", []gitwriter.Revision{rev(4, "v41", "Update by hand"), rev(3, "v40", rollback("v42")), rev(2, "v42", "Promote")}, nil},
		{"an old-style rollback", []gitwriter.Revision{rev(3, "v40", "Roll back\n\nSlipway-Previous-Tag: v42\nSlipway-Rollback: true\n"), rev(2, "v42", "Promote")},
			[]promotion.Rollback{{From: "v42", When: t0.Add(3 * time.Hour)}}},
		{"the setter beyond the history read is unknown", []gitwriter.Revision{{When: t0, Exists: true, Content: []byte("image_tag: v40\n"), Cut: true}}, nil},
		{"the file is gone", []gitwriter.Revision{rev(3, "", "drop")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RolledBackFrom(tagfile.DefaultKeys, revs(tc.revs...))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			got, err = RolledBackFrom(tagfile.DefaultKeys, revs(withBefore(tc.revs)...))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got, "the same when each version says what it replaced")
		})
	}
	_, err := RolledBackFrom(tagfile.DefaultKeys, func(func(gitwriter.Revision) bool) error { return errors.New("fetch failed") })
	assert.EqualError(t, err, "fetch failed")
}

// When each version says what it replaced, the rollbacks are read no
// further than the version that ends them: the history read stops at the
// parent of the commit that set the current tag, however far back the
// tag before it was set (the promoter's history fetch goes no deeper).
func TestRolledBackFromStopsAtTheSetter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		revs    []gitwriter.Revision
		visited int // of the versions, with Before
	}{
		{"a promotion set the tag", []gitwriter.Revision{rev(3, "v42", "Promote"), rev(2, "v41", "Promote"), rev(1, "v40", "Promote")}, 1},
		{"an edit that kept the tag since", []gitwriter.Revision{rev(4, "v42", "comment"), rev(3, "v42", "Promote"), rev(2, "v41", "Promote")}, 2},
		{"a rollback, then the release it followed", []gitwriter.Revision{rev(4, "v40", rollback("v42")), rev(3, "v42", "Promote"), rev(2, "v40", "Promote"), rev(1, "v39", "Promote")}, 2},
		{"the file was created", []gitwriter.Revision{rev(2, "v42", "Promote"), rev(1, "", "")}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var plain, ahead int
			want, err := RolledBackFrom(tagfile.DefaultKeys, counted(tc.revs, &plain))
			require.NoError(t, err)
			got, err := RolledBackFrom(tagfile.DefaultKeys, counted(withBefore(tc.revs), &ahead))
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.Equal(t, tc.visited, ahead)
			assert.Equal(t, tc.visited+1, plain, "without Before, one version more: the one whose setter may lie far deeper")
		})
	}
}

func TestTagSetAt(t *testing.T) {
	when, err := TagSetAt(tagfile.DefaultKeys, "v42", revs(rev(5, "v42", "comment"), rev(4, "v42", "Promote"), rev(3, "v41", "Promote")))
	require.NoError(t, err)
	assert.Equal(t, t0.Add(4*time.Hour), when, "an edit that keeps the tag does not restart it")
	when, err = TagSetAt(tagfile.DefaultKeys, "v43", revs(rev(5, "v42", "Promote")))
	require.NoError(t, err)
	assert.True(t, when.IsZero())

	// Saying what each version replaced, it stops at the setter.
	list := []gitwriter.Revision{rev(5, "v42", "comment"), rev(4, "v42", "Promote"), rev(3, "v41", "Promote"), rev(2, "v40", "Promote")}
	var n int
	when, err = TagSetAt(tagfile.DefaultKeys, "v42", counted(withBefore(list), &n))
	require.NoError(t, err)
	assert.Equal(t, t0.Add(4*time.Hour), when)
	assert.Equal(t, 2, n, "no further than the version that set v42")
}
