package testsupport

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Production code (steps/, plugin/, internal/ outside testsupport) never
// imports test support, directly or through another package.
func TestProductionNeverImportsTestSupport(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}",
		"github.com/slipway-deploy/slipway/steps/...", "github.com/slipway-deploy/slipway/plugin/...").CombinedOutput()
	require.NoError(t, err, string(out))
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/slipway-deploy/slipway/internal/stepcli", "the listing covers the steps")
	for _, p := range deps {
		assert.NotContains(t, p, "/internal/testsupport", "a production binary depends on test support")
	}
}
