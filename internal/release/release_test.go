package release

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIsRelease(t *testing.T) {
	p, err := NewPolicy("")
	require.NoError(t, err)
	for tag, want := range map[string]bool{
		"v1": true, "v1796": true, "v": false, "V1": false, "v1.2": false,
		"0123456789abcdef0123456789abcdef01234567": false, "release-1": false,
	} {
		assert.Equal(t, want, p.IsRelease(tag), tag)
	}
	_, err = NewPolicy("(")
	assert.ErrorContains(t, err, "release pattern")
}

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"v41", "v42", -1},
		{"v42", "v41", 1},
		{"v9", "v10", -1},
		{"v10", "v10", 0},
		{"v010", "v10", 0},
		{"v1.2.9", "v1.2.10", -1},
		{"v99999999999999999999999", "v100000000000000000000000", -1},
		{"v1", "v1.1", -1},
		{"release-2", "release-10", -1},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Compare(tt.a, tt.b), "%s vs %s", tt.a, tt.b)
		assert.Equal(t, -tt.want, Compare(tt.b, tt.a), "%s vs %s", tt.b, tt.a)
	}
}
