package smoke

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/slipway-deploy/slipway/internal/redact"
)

// The suite's output reaches the redacting writer a whole line at a time: a
// secret the suite prints in two writes, read by two pipe reads, is masked.
func TestRunCommandMasksASecretSplitAcrossPipeReads(t *testing.T) {
	const secret = "suite-Secret-0a1b2c3d"
	red := &redact.Redactor{}
	red.Add(secret)
	var stdout, stderr bytes.Buffer
	_, _ = RunCommand(context.Background(), Command{
		Command:    `printf 'login with suite-Sec'; sleep 0.2; printf 'ret-0a1b2c3d\n'; { printf 'suite-Secret-0a'; sleep 0.2; printf '1b2c3d\n'; } >&2`,
		JUnitInput: filepath.Join(t.TempDir(), "r.xml"),
		Stdout:     red.Writer(&stdout), Stderr: red.Writer(&stderr),
	})
	assert.Equal(t, "login with ***\n", stdout.String())
	assert.Equal(t, "***\n", stderr.String())
}
