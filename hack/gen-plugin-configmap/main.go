// Command gen-plugin-configmap writes DIR/<name>-executor-plugin-configmap.yaml
// from DIR/plugin.yaml (make plugin-configmap).
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/slipway-deploy/slipway/internal/pluginmanifest"
)

func main() {
	dir := "plugin"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	name, content, err := pluginmanifest.ConfigMap(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen-plugin-configmap:", err)
		os.Exit(1)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen-plugin-configmap:", err)
		os.Exit(1)
	}
	fmt.Println(path, "written")
}
