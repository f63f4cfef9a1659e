package oneline

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"":                             "",
		"one line":                     "one line",
		"  pq: error\n\tDETAIL: x  \n": "pq: error DETAIL: x",
		"a\r\nb\vc\fd":                 "a b c d",
	} {
		assert.Equal(t, want, Fold(in), "%q", in)
	}
}

func TestOr(t *testing.T) {
	assert.Equal(t, "v42", Or("v42", "none"))
	assert.Equal(t, "none", Or("", "none"))
}
