package assets

import (
	"bytes"
	"crypto/md5"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFingerprinted(t *testing.T) {
	cases := []struct {
		rel  string
		want bool
	}{
		{"application-6f1a0b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8.css", true}, // Sprockets
		{"images/logo-1a2b3c4d.png", true},               // Propshaft
		{"main.3f2a1b9c.js", true},                       // webpack
		{"app-5e1c0d7a.digested.js", true},               // jsbundling
		{"app-5E1C0D7A.js", true},                        // upper-case hex
		{"app-0123abcd4567.css.gz", true},                // a compressed sibling
		{"manifest.json", false},                         // no hash
		{"favicon.ico", false},                           //
		{"jquery-3.7.1.min.js", false},                   // version, not a hash
		{"report-20261125.csv", false},                   // a date: digits only
		{"deadbeefcafe.js", false},                       // the first part is the name
		{"font-abcdefab.woff", false},                    // letters only
		{"app-5e1C0d7a.js", false},                       // mixed case: not a digest
		{"app-5e1c0d7.js", false},                        // 7 digits: too short
		{"ünïcødé/файл-0a1b2c3d4e5f.svg", true},          // non-ASCII folders and names
		{"dir-0a1b2c3d4e5f/plain.js", false},             // only the file name counts
		{"x-" + strings.Repeat("a1", 65) + ".js", false}, // 130 digits: not a digest
	}
	for _, tc := range cases {
		t.Run(tc.rel, func(t *testing.T) {
			assert.Equal(t, tc.want, Fingerprinted(tc.rel))
		})
	}
}

func TestContentType(t *testing.T) {
	cases := []struct {
		name string
		head []byte
		want string
	}{
		{"a.css", nil, "text/css; charset=utf-8"},
		{"a.JS", nil, "text/javascript; charset=utf-8"},
		{"a.woff2", nil, "font/woff2"},
		{"a.svg", nil, "image/svg+xml"},
		{"a.js.map", nil, "application/json"},
		{"noext", []byte("\x89PNG\r\n\x1a\n0000"), "image/png"},
		{"noext", []byte("<!DOCTYPE html><html>"), "text/html; charset=utf-8"},
		{"noext", []byte("plain words"), "text/plain; charset=utf-8"},
		{"noext", []byte{0, 1, 2, 3}, "application/octet-stream"},
		{"a.unknownext", []byte("plain words"), "text/plain; charset=utf-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/"+tc.want, func(t *testing.T) {
			assert.Equal(t, tc.want, ContentType(tc.name, tc.head))
		})
	}
}

func TestParsePatterns(t *testing.T) {
	cases := []struct {
		in      string
		want    Patterns
		wantErr string
	}{
		{DefaultManifestPatterns, Patterns{".sprockets-manifest-*.json", "manifest*.json"}, ""},
		{" a.json , ,b*.json ", Patterns{"a.json", "b*.json"}, ""},
		{"", nil, ""},
		{"manifest[.json", nil, "syntax error in pattern"},
		{"/abs/*.json", nil, "relative to the source dir"},
		{"packs/manifest.json", Patterns{"packs/manifest.json"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePatterns(tc.in)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestPatternsMatch(t *testing.T) {
	ps, err := ParsePatterns(DefaultManifestPatterns + ",packs/entry*.json")
	require.NoError(t, err)
	cases := map[string]bool{
		".sprockets-manifest-0f1e2d3c.json": true,
		"assets/.sprockets-manifest-a.json": true,
		"manifest.json":                     true,
		"packs/manifest-v2.json":            true,
		"packs/entrypoints.json":            true,
		"other/entrypoints.json":            false,
		"manifest.js":                       false,
		"application-0a1b2c3d.js":           false,
	}
	for rel, want := range cases {
		assert.Equal(t, want, ps.Match(rel), rel)
	}
	rest, manifests := Policy{Manifests: ps}.Split([]File{{Rel: "a.js"}, {Rel: "manifest.json"}, {Rel: "b.css"}})
	assert.Equal(t, []File{{Rel: "a.js"}, {Rel: "b.css"}}, rest)
	assert.Equal(t, []File{{Rel: "manifest.json"}}, manifests)
}

// FuzzParsePatterns: the --manifest-pattern flag is outside input. Parsing
// never panics, and a parsed list never fails to match.
func FuzzParsePatterns(f *testing.F) {
	for _, s := range []string{DefaultManifestPatterns, "", ",", "[", "a/**/b", "\\", "*.json,[a-", "/x"} {
		f.Add(s, "manifest.json")
	}
	f.Fuzz(func(t *testing.T, s, rel string) {
		ps, err := ParsePatterns(s)
		if err != nil {
			return
		}
		for _, p := range ps {
			if p == "" || strings.TrimSpace(p) != p || strings.Contains(p, ",") {
				t.Fatalf("pattern %q kept from %q", p, s)
			}
		}
		ps.Match(rel) // must not panic
	})
}

func TestWalk(t *testing.T) {
	root := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	write("a.css", "a")
	write("ünï/файл 1.js", "bb")
	write("shared/logo.svg", "ccc")
	require.NoError(t, os.Symlink("shared", filepath.Join(root, "alias")))                  // dir inside
	require.NoError(t, os.Symlink("../a.css", filepath.Join(root, "shared", "a-link.css"))) // file inside
	files, err := Walk(root)
	require.NoError(t, err)
	var rels []string
	for _, f := range files {
		rels = append(rels, f.Rel)
	}
	assert.Equal(t, []string{"a.css", "alias/a-link.css", "alias/logo.svg", "shared/a-link.css", "shared/logo.svg", "ünï/файл 1.js"}, rels)
	assert.Equal(t, int64(2), files[5].Size)

	loop := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(loop, "a.css"), nil, 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(loop, "d"), 0o755))
	require.NoError(t, os.Symlink("..", filepath.Join(loop, "d", "up")))
	_, err = Walk(loop)
	assert.True(t, errors.Is(err, ErrInvalidTree))
	assert.ErrorContains(t, err, "symlink loop at d/up")

	out := t.TempDir()
	escape := t.TempDir()
	require.NoError(t, os.Symlink(out, filepath.Join(escape, "outdir")))
	_, err = Walk(escape)
	assert.ErrorIs(t, err, ErrInvalidTree)
	assert.ErrorContains(t, err, "symlink outdir leads outside the source dir")
}

func TestInspectHashesWholeAndParts(t *testing.T) {
	dir := t.TempDir()
	body := bytes.Repeat([]byte("0123456789abcdef"), 1000) // 16,000 bytes
	p := filepath.Join(dir, "big-0a1b2c3d4e.js")
	require.NoError(t, os.WriteFile(p, body, 0o644))
	pol := Policy{CacheControl: "long", CacheControlUnfingerprinted: "short", PartSize: 5000}
	a, err := pol.Inspect(File{Rel: "big-0a1b2c3d4e.js", Path: p, Size: int64(len(body))}, nil)
	require.NoError(t, err)
	assert.Equal(t, md5.Sum(body), a.MD5)
	require.Len(t, a.PartMD5s, 4)
	for i := 0; i < 4; i++ {
		end := min((i+1)*5000, len(body))
		assert.Equal(t, md5.Sum(body[i*5000:end]), a.PartMD5s[i], "part %d", i)
	}
	assert.Equal(t, "long", a.CacheControl)
	assert.Equal(t, "text/javascript; charset=utf-8", a.ContentType)

	pol.PartSize = 16000 // exactly one part: a single PUT
	small, err := pol.Inspect(a.File, nil)
	require.NoError(t, err)
	assert.Empty(t, small.PartMD5s)

	_, err = pol.Inspect(File{Rel: "x", Path: p, Size: 3}, nil)
	assert.ErrorContains(t, err, "size changed while publishing")
}

func TestInspectEncodingSiblingsAndManifests(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"app.js", "app.js.gz", "app.js.br", "alone.css.gz", "manifest-0a1b2c3d4e.json"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), []byte("\x1f\x8bxx"), 0o644))
	}
	all := map[string]bool{"app.js": true, "app.js.gz": true, "app.js.br": true, "alone.css.gz": true, "manifest-0a1b2c3d4e.json": true}
	ps, _ := ParsePatterns(DefaultManifestPatterns)
	cases := []struct {
		rel, ctype, enc, cache string
		siblings, manifest     bool
	}{
		{"app.js.gz", "text/javascript; charset=utf-8", "gzip", "short", true, false},
		{"app.js.br", "text/javascript; charset=utf-8", "br", "short", true, false},
		{"alone.css.gz", "application/gzip", "", "short", true, false},
		{"app.js.gz", "application/gzip", "", "short", false, false},
		{"manifest-0a1b2c3d4e.json", "application/json", "", "short", false, true}, // a hash in the name, but a manifest
	}
	for _, tc := range cases {
		pol := Policy{Manifests: ps, CacheControl: "long", CacheControlUnfingerprinted: "short", EncodingSiblings: tc.siblings}
		a, err := pol.Inspect(File{Rel: tc.rel, Path: filepath.Join(dir, tc.rel), Size: 4}, all)
		require.NoError(t, err)
		assert.Equal(t, tc.ctype, a.ContentType, tc.rel)
		assert.Equal(t, tc.enc, a.ContentEncoding, tc.rel)
		assert.Equal(t, tc.cache, a.CacheControl, tc.rel)
		assert.Equal(t, tc.manifest, a.Manifest, tc.rel)
	}
}
