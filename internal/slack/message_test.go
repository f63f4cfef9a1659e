package slack

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestEscapeShort(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"a & b", 20, "a &amp; b"},
		{"a & b", 9, "a &amp; b"},
		{"a & b", 8, "a &amp;…"},
		{"a & b", 6, "a …"}, // never half an entity
		{"<!channel>", 10, "&lt;!chan…"},
		{"ééééé", 4, "ééé…"},
	} {
		got := EscapeShort(tc.in, tc.max)
		assert.Equal(t, tc.want, got, "%q %d", tc.in, tc.max)
		assert.LessOrEqual(t, utf8.RuneCountInString(got), tc.max)
	}
}

// Whatever the text, the result fits, is Escape's when that fits, and
// otherwise a prefix of it cut between entities.
func FuzzEscapeShort(f *testing.F) {
	for _, s := range []string{"", "a & b", "<>&", strings.Repeat("é&", 50), "\xff<"} {
		f.Add(s, 7)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 1 || max > 5000 || !utf8.ValidString(s) {
			return
		}
		got := EscapeShort(s, max)
		assert.LessOrEqual(t, utf8.RuneCountInString(got), max)
		full := Escape(s)
		if utf8.RuneCountInString(full) <= max {
			assert.Equal(t, full, got)
			return
		}
		prefix, ok := strings.CutSuffix(got, "…")
		assert.True(t, ok)
		assert.True(t, strings.HasPrefix(full, prefix))
		assert.Equal(t, prefix, Escape(unescape(prefix)), "cut between entities")
	})
}

func unescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(s)
}
