// Command assettree writes a synthetic compiled-asset tree for benchmarks:
// -n files of -min to -max bytes (random, seeded) in nested folders, half of
// them with a digest in the name, plus a Sprockets manifest.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

func main() {
	dir := flag.String("dir", "", "folder to write (created)")
	n := flag.Int("n", 5000, "number of files")
	minSize := flag.Int("min", 1<<10, "smallest file in bytes")
	maxSize := flag.Int("max", 50<<10, "largest file in bytes")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if *dir == "" || *n < 1 || *minSize < 0 || *maxSize < *minSize {
		fmt.Fprintln(os.Stderr, "usage: assettree -dir DIR [-n 5000] [-min 1024] [-max 51200] [-seed 1]")
		os.Exit(2)
	}
	if err := write(*dir, *n, *minSize, *maxSize, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "assettree:", err)
		os.Exit(1)
	}
}

func write(dir string, n, minSize, maxSize int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 1))
	exts := []string{".js", ".css", ".svg", ".png", ".woff2", ".map"}
	folders := []string{"", "stylesheets", "javascripts", "javascripts/vendor", "images", "images/icons", "fonts"}
	buf := make([]byte, maxSize)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("asset%d", i)
		if i%2 == 0 {
			name += fmt.Sprintf("-%016x%016x", rng.Uint64()|1<<60, rng.Uint64())
		}
		p := filepath.Join(dir, folders[rng.IntN(len(folders))], name+exts[rng.IntN(len(exts))])
		size := minSize + rng.IntN(maxSize-minSize+1)
		for j := 0; j < size; j++ {
			buf[j] = byte(rng.Uint32())
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, buf[:size], 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, ".sprockets-manifest-0f1e2d3c4b5a69788796a5b4c3d2e1f0.json"), []byte(`{"files":{}}`), 0o644)
}
