package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// goBuild builds src as its own module in a temporary folder, with the
// given environment and build flags, and returns the binary's path.
func goBuild(t *testing.T, src string, env []string, flags ...string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module probe\n\ngo 1.26\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644))
	out := filepath.Join(dir, "probe")
	cmd := exec.Command("go", append(append([]string{"build", "-o", out}, flags...), ".")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", b)
	return out
}

const pureGo = "package main\n\nfunc main() {}\n"

// cgoProg calls into the C library, so a default build links libc
// dynamically: what migrate (pg_query_go) would be without -extldflags=-static.
const cgoProg = `package main

// #include <stdlib.h>
import "C"

func main() { C.abs(-1) }
`

func TestCheckStatic(t *testing.T) {
	t.Parallel()
	notELF := filepath.Join(t.TempDir(), "script.sh")
	require.NoError(t, os.WriteFile(notELF, []byte("#!/bin/sh\necho hi\n"), 0o755))
	tests := []struct {
		name    string
		path    func(t *testing.T) string
		dynamic bool     // wants errDynamic
		errHas  []string // wants an error mentioning these (none: no error)
	}{
		{name: "pure Go without cgo", path: func(t *testing.T) string {
			return goBuild(t, pureGo, []string{"CGO_ENABLED=0"})
		}},
		{name: "cgo linked statically, as make static links migrate", path: func(t *testing.T) string {
			return goBuild(t, cgoProg, []string{"CGO_ENABLED=1"},
				"-tags", "netgo,osusergo", "-ldflags", "-linkmode external -extldflags=-static")
		}},
		{name: "cgo linked dynamically", dynamic: true, errHas: []string{"loader /lib", "library libc.so"},
			path: func(t *testing.T) string { return goBuild(t, cgoProg, []string{"CGO_ENABLED=1"}) }},
		{name: "not an ELF file", errHas: []string{"bad magic"}, path: func(*testing.T) string { return notELF }},
		{name: "missing file", errHas: []string{"no such file"}, path: func(t *testing.T) string {
			return filepath.Join(t.TempDir(), "absent")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkStatic(tt.path(t))
			if len(tt.errHas) == 0 {
				require.NoError(t, err)
				return
			}
			for _, s := range tt.errHas {
				require.ErrorContains(t, err, s)
			}
			require.Equal(t, tt.dynamic, errors.Is(err, errDynamic))
		})
	}
}
