package redact

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedactor(t *testing.T) {
	var r Redactor
	r.Add("s3cr/t+tok", "", "  ")
	tests := []struct {
		in, want string
	}{
		{"token s3cr/t+tok here", "token *** here"},
		{"https://x:s3cr%2Ft+tok@host/repo", "https://x:***@host/repo"},
		{"q=s3cr%2Ft%2Btok", "q=***"},
		{"nothing secret", "nothing secret"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, r.String(tt.in), tt.in)
	}
}

func TestWriterMasksEachWrite(t *testing.T) {
	var r Redactor
	r.Add("hunter2")
	var buf bytes.Buffer
	w := r.Writer(&buf)
	n, err := fmt.Fprintf(w, "password=%s\n", "hunter2")
	assert.NoError(t, err)
	assert.Equal(t, len("password=hunter2\n"), n)
	assert.Equal(t, "password=***\n", buf.String())
}

func TestURL(t *testing.T) {
	var r Redactor
	assert.Equal(t, "postgres://app:***@db:5432/x", r.URL("postgres://app:pw@db:5432/x"))
	assert.Equal(t, "https://host/repo.git", r.URL("https://host/repo.git"))
	var nilR *Redactor
	assert.Equal(t, "a", nilR.String("a"))
}
