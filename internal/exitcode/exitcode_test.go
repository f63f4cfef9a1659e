package exitcode

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCode(t *testing.T) {
	base := errors.New("boom")
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, OK},
		{"plain error", base, Failed},
		{"invalid", Invalidf("bad app %q", "x"), Invalid},
		{"held", Heldf("frozen"), Held},
		{"wrapped invalid", fmt.Errorf("bump: %w", Invalidf("bad")), Invalid},
		{"as invalid keeps cause", AsInvalid(base), Invalid},
		{"failed", Failedf("push: %w", base), Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Code(tt.err))
		})
	}
	assert.ErrorIs(t, AsInvalid(base), base)
	assert.Nil(t, AsInvalid(nil))
}
