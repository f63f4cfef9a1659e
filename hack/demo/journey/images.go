package journey

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/slipway-deploy/slipway/hack/demo/localargo"
)

// Image references: the apps' images, as CI would push them, and the
// Slipway image the templates name by default.
const (
	registry     = "registry.demo.invalid/"
	slipwayImage = "slipway-deploy/slipway"
)

// images are the apps' images as folders: what a container of
// registry.demo.invalid/APP:TAG sees in its working directory. Each holds
// the release's compiled assets with their manifest (as Rails leaves them
// in public/assets/APP) and its migration command.
type images struct {
	dir string
	bin string // the Slipway image's /usr/local/bin
	pod string // where containers of the Slipway image start
}

func (im *images) ref(app, tag string) string { return registry + app + ":" + tag }

// image maps an image reference to its files, making an app's image the
// first time it is asked for.
func (im *images) image(ref string) (localargo.Image, error) {
	if name, _, _ := strings.Cut(ref, ":"); name == slipwayImage {
		return localargo.Image{WorkDir: im.pod, Paths: map[string]string{"/usr/local/bin": im.bin}}, nil
	}
	app, tag, ok := strings.Cut(strings.TrimPrefix(ref, registry), ":")
	if !ok || !strings.HasPrefix(ref, registry) {
		return localargo.Image{}, fmt.Errorf("not an image of this demo")
	}
	dir, err := im.ensure(app, tag)
	return localargo.Image{WorkDir: dir}, err
}

// manifest is the part of a Sprockets manifest the app reads: logical
// name -> fingerprinted file.
type manifest struct {
	Assets map[string]string `json:"assets"`
}

// ensure makes app's image at tag, once, and returns its folder.
func (im *images) ensure(app, tag string) (string, error) {
	dir := filepath.Join(im.dir, app, tag)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	assets := filepath.Join(dir, "public", "assets", app)
	files := map[string]string{
		"application.js":  fmt.Sprintf("document.title += \" (%s %s)\";\n", app, tag),
		"application.css": fmt.Sprintf("h1 { color: #1d70b8; } /* %s %s */\n", app, tag),
	}
	m := manifest{Assets: map[string]string{}}
	for logical, body := range files {
		ext := filepath.Ext(logical)
		name := strings.TrimSuffix(logical, ext) + "-" + fingerprint(body) + ext
		m.Assets[logical] = name
		if err := writeFile(filepath.Join(assets, name), body, 0o644); err != nil {
			return "", err
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(assets, ".sprockets-manifest-"+fingerprint(string(b))+".json"), string(b), 0o644); err != nil {
		return "", err
	}
	migration := fmt.Sprintf("#!/bin/sh\n# %s %s: the app's migration command (rails db:migrate, in a real app)\necho \"%s %s: schema migrated\"\n", app, tag, app, tag)
	return dir, writeFile(filepath.Join(dir, "db", "migrate"), migration, 0o755)
}

// readManifest reads the asset manifest of an image's asset folder.
func readManifest(assets string) (manifest, error) {
	var m manifest
	found, err := filepath.Glob(filepath.Join(assets, ".sprockets-manifest-*.json"))
	if err != nil || len(found) != 1 {
		return m, fmt.Errorf("%s: want one asset manifest, found %d", assets, len(found))
	}
	b, err := os.ReadFile(found[0])
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}

func fingerprint(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

func writeFile(path, content string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), mode)
}
