// Command staticelf fails when a binary needs a dynamic loader or a shared
// library at run time. The Slipway image's binaries are copied into apps'
// own images, whose C library (glibc, musl or none) nobody here knows, so
// each must run on its own. hack/image-check.sh runs it on every binary:
//
//	go run ./hack/staticelf FILE...
package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./hack/staticelf FILE...")
		os.Exit(2)
	}
	failed := false
	for _, path := range os.Args[1:] {
		if err := checkStatic(path); err != nil {
			fmt.Fprintf(os.Stderr, "staticelf: %v\n", err)
			failed = true
			continue
		}
		fmt.Printf("staticelf: %s: static\n", path)
	}
	if failed {
		os.Exit(1)
	}
}

// errDynamic marks a binary that would not run without something from the
// image it is copied into.
var errDynamic = errors.New("not static")

// checkStatic reads path's ELF headers: a PT_INTERP program header names
// the dynamic loader the kernel would start first, DT_NEEDED entries the
// shared libraries that loader would look for. A static binary has neither.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s: ELF type %s is not an executable", path, f.Type)
	}
	var needs []string
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		interp, err := io.ReadAll(p.Open())
		if err != nil {
			return fmt.Errorf("%s: read PT_INTERP: %w", path, err)
		}
		needs = append(needs, "loader "+strings.TrimRight(string(interp), "\x00"))
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: read DT_NEEDED: %w", path, err)
	}
	for _, lib := range libs {
		needs = append(needs, "library "+lib)
	}
	if len(needs) > 0 {
		return fmt.Errorf("%s: %w: needs %s", path, errDynamic, strings.Join(needs, ", "))
	}
	return nil
}
