// Package outputs writes Argo output parameters: one file per parameter in a
// folder, read back by a template's `valueFrom.path`. Files are written
// atomically (temp file + rename) so Argo never reads half a value.
package outputs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/google/renameio/v2"
)

// Check makes sure dir can take the outputs before a step does any work:
// a step that pushed a commit and then failed to report it would fail every
// retry too (exit 1), while its change is already live. It creates dir and
// a probe file, then removes the probe. An empty dir is fine (no outputs).
func Check(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("outputs dir %s is not writable: %w", dir, err)
	}
	probe, err := os.CreateTemp(dir, ".slipway-probe-*")
	if err != nil {
		return fmt.Errorf("outputs dir %s is not writable: %w", dir, err)
	}
	cerr := probe.Close()
	if err := os.Remove(probe.Name()); err != nil || cerr != nil {
		return fmt.Errorf("outputs dir %s is not writable: %w", dir, errors.Join(cerr, err))
	}
	return nil
}

// Write writes each name=value pair into dir/name. An empty dir writes
// nothing (outputs were not asked for).
func Write(dir string, values map[string]string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("outputs dir %s: %w", dir, err)
	}
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "" || filepath.Base(name) != name {
			return fmt.Errorf("output name %q is not a plain file name", name)
		}
		if err := renameio.WriteFile(filepath.Join(dir, name), []byte(values[name]), 0o644); err != nil {
			return fmt.Errorf("write output %s: %w", name, err)
		}
	}
	return nil
}
