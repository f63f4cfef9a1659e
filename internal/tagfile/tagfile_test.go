package tagfile

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	yaml11 "go.yaml.in/yaml/v2"
	yaml "go.yaml.in/yaml/v3"
)

func TestSetKeepsEveryOtherByte(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		tag     string
		promote bool
		want    string
	}{
		{"plain", "image_tag: v1\nautomatic_deploys_enabled: true\npromote_deployment: true\n", "v2", true,
			"image_tag: v2\nautomatic_deploys_enabled: true\npromote_deployment: true\n"},
		{"comments everywhere", "# frontend in staging\nimage_tag: v1 # set by CI\n\n# people set this\nautomatic_deploys_enabled: false\npromote_deployment: true  # by slipway\n", "v2", false,
			"# frontend in staging\nimage_tag: v2 # set by CI\n\n# people set this\nautomatic_deploys_enabled: false\npromote_deployment: false  # by slipway\n"},
		{"double quotes", "image_tag: \"v1\"\npromote_deployment: false\n", "v10", true,
			"image_tag: \"v10\"\npromote_deployment: true\n"},
		{"single quotes", "image_tag: 'v1'\npromote_deployment: 'true'\n", "v2", true,
			"image_tag: 'v2'\npromote_deployment: true\n"},
		{"extra keys and order kept", "promote_deployment: true\nextra:\n  nested: [1, 2]\nimage_tag: v1\nlast: x\n", "v2", true,
			"promote_deployment: true\nextra:\n  nested: [1, 2]\nimage_tag: v2\nlast: x\n"},
		{"missing flag", "image_tag: v1\nautomatic_deploys_enabled: true\n", "v2", true,
			"image_tag: v2\npromote_deployment: true\nautomatic_deploys_enabled: true\n"},
		{"missing tag", "automatic_deploys_enabled: true\npromote_deployment: false\n", "v2", true,
			"image_tag: v2\nautomatic_deploys_enabled: true\npromote_deployment: true\n"},
		{"missing both", "# only a comment\nautomatic_deploys_enabled: true\n", "v2", true,
			"# only a comment\nimage_tag: v2\npromote_deployment: true\nautomatic_deploys_enabled: true\n"},
		{"no trailing newline", "image_tag: v1\npromote_deployment: true", "v2", false,
			"image_tag: v2\npromote_deployment: false"},
		{"no trailing newline, flag missing", "image_tag: v1", "v2", true,
			"image_tag: v2\npromote_deployment: true"},
		{"CRLF", "image_tag: v1\r\nautomatic_deploys_enabled: true\r\n", "v2", true,
			"image_tag: v2\r\npromote_deployment: true\r\nautomatic_deploys_enabled: true\r\n"},
		{"flow style", "{image_tag: v1, promote_deployment: false}\n", "v2", true,
			"{image_tag: v2, promote_deployment: true}\n"},
		{"flow style, flag missing", "{ image_tag: v1 }\n", "v2", true,
			"{ image_tag: v2, promote_deployment: true }\n"},
		{"flow style, empty", "{}\n", "v2", true,
			"{image_tag: v2, promote_deployment: true}\n"},
		{"document markers", "---\nimage_tag: v1\npromote_deployment: true\n...\n", "v2", true,
			"---\nimage_tag: v2\npromote_deployment: true\n...\n"},
		{"indented after marker comment", "--- # tags\nimage_tag:   v1\n", "v2", true,
			"--- # tags\nimage_tag:   v2\npromote_deployment: true\n"},
		{"numeric-looking tag gets quoted", "image_tag: v1\npromote_deployment: true\n", "1.10", false,
			"image_tag: \"1.10\"\npromote_deployment: false\n"},
		{"commit sha", "image_tag: v1\npromote_deployment: true\n", "0123456789abcdef0123456789abcdef01234567", false,
			"image_tag: 0123456789abcdef0123456789abcdef01234567\npromote_deployment: false\n"},
		{"anchor kept", "image_tag: &t v1\npromote_deployment: true\n", "v2", true,
			"image_tag: &t v2\npromote_deployment: true\n"},
		{"empty value", "image_tag:\npromote_deployment: true\n", "v2", true,
			"image_tag: v2\npromote_deployment: true\n"},
		{"empty file", "", "v2", true, "image_tag: v2\npromote_deployment: true\n"},
		{"comment only, no newline", "# new app", "v2", true, "# new app\nimage_tag: v2\npromote_deployment: true\n"},
		{"unicode and BOM", "\ufeff# café\nimage_tag: v1 # ünïcode\n", "v2", true,
			"\ufeff# café\nimage_tag: v2 # ünïcode\npromote_deployment: true\n"},
		{"capitalised bool", "image_tag: v1\npromote_deployment: True\n", "v2", false,
			"image_tag: v2\npromote_deployment: false\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.in), DefaultKeys)
			require.NoError(t, err)
			out, err := f.Set(tt.tag, tt.promote)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(out))

			g, err := Parse(out, DefaultKeys)
			require.NoError(t, err)
			tag, ok := g.Tag()
			assert.True(t, ok)
			assert.Equal(t, tt.tag, tag)
			assert.Equal(t, tt.promote, g.Promote())
		})
	}
}

func TestParseReadsFlags(t *testing.T) {
	tests := []struct {
		name             string
		in               string
		tag              string
		hasTag           bool
		promote, autoDep bool
	}{
		{"all set", "image_tag: v5\nautomatic_deploys_enabled: true\npromote_deployment: true\n", "v5", true, true, true},
		{"missing flags are false", "image_tag: v5\n", "v5", true, false, false},
		{"quoted flags", "image_tag: v5\nautomatic_deploys_enabled: \"true\"\npromote_deployment: 'false'\n", "v5", true, false, true},
		{"null tag", "image_tag: ~\n", "", false, false, false},
		{"numeric tag read as text", "image_tag: 1796\n", "1796", true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.in), DefaultKeys)
			require.NoError(t, err)
			tag, ok := f.Tag()
			assert.Equal(t, tt.hasTag, ok)
			assert.Equal(t, tt.tag, tag)
			assert.Equal(t, tt.promote, f.Promote())
			assert.Equal(t, tt.autoDep, f.AutoDeploy())
		})
	}
}

func TestParseRefusesMalformed(t *testing.T) {
	tests := []struct{ name, in, msg string }{
		{"bad yaml", "image_tag: [v1\n", "malformed"},
		{"a list", "- image_tag: v1\n", "not a map"},
		{"a scalar", "v1\n", "not a map"},
		{"two documents", "image_tag: v1\n---\nimage_tag: v2\n", "more than one"},
		{"duplicate tag", "image_tag: v1\nimage_tag: v2\n", "repeats"},
		{"tag is a map", "image_tag:\n  a: b\n", "not a plain value"},
		{"flag not a bool", "image_tag: v1\npromote_deployment: maybe\n", "true or false"},
		{"tabs", "image_tag:\tv1\n\tx: 1\n", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in), DefaultKeys)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrMalformed)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestSetRefusesWhatItCannotEditInPlace(t *testing.T) {
	for _, in := range []string{
		"image_tag: |\n  v1\n",
		"image_tag: v1\n  continued\n",
		"image_tag: \"v1\n  v1b\"\n",
	} {
		f, err := Parse([]byte(in), DefaultKeys)
		require.NoError(t, err, in)
		_, err = f.Set("v2", true)
		assert.ErrorIs(t, err, ErrCannotEdit, in)
	}
}

func TestNew(t *testing.T) {
	out := New("v3", true, DefaultKeys)
	assert.Equal(t, "image_tag: v3\npromote_deployment: true\n", string(out))
	assert.Equal(t, "image_tag: \"true\"\npromote_deployment: false\n", string(New("true", false, DefaultKeys)))
}

// readBack decodes the tag the way each YAML version reads it: Helm reads
// values files with a YAML 1.1 parser, other tools with YAML 1.2 ones.
func readBack(t *testing.T, out []byte) (v11, v12 any) {
	t.Helper()
	var m11 map[string]any
	require.NoError(t, yaml11.Unmarshal(out, &m11), "%q", out)
	var m12 map[string]any
	require.NoError(t, yaml.Unmarshal(out, &m12), "%q", out)
	return m11["image_tag"], m12["image_tag"]
}

// Tags that YAML 1.1 (or 1.2) reads as a boolean, a number, a null or a
// timestamp are written quoted; tags that read back as themselves stay plain.
func TestTagsThatAreNotStringsInYAML11AreQuoted(t *testing.T) {
	quoted := []string{
		// YAML 1.1 booleans, every spelling the spec lists
		"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
		"on", "On", "ON", "off", "Off", "OFF", "true", "True", "FALSE",
		// YAML 1.1 numbers
		"1e3", "1E3", "0x1F", "0b101", "017", "1_000", "0.", ".5", "1.10", "-1", "+1", "42",
		".inf", "-.Inf", ".NaN",
		// nulls and timestamps
		"~", "null", "Null", "NULL", "2026-11-25",
	}
	for _, tag := range quoted {
		t.Run(tag, func(t *testing.T) {
			want := "image_tag: \"" + tag + "\"\npromote_deployment: true\n"
			assert.Equal(t, want, string(New(tag, true, DefaultKeys)))
			f, err := Parse([]byte("image_tag: v1\npromote_deployment: true\n"), DefaultKeys)
			require.NoError(t, err)
			out, err := f.Set(tag, true)
			require.NoError(t, err)
			assert.Equal(t, want, string(out))
			v11, v12 := readBack(t, out)
			assert.Equal(t, tag, v11, "YAML 1.1 reads it back as the string")
			assert.Equal(t, tag, v12, "YAML 1.2 reads it back as the string")
		})
	}
	for _, tag := range []string{"v42", "v1796", "release-2026-11-25", "0123456789abcdef0123456789abcdef01234567", "yesterday", "1.2.3", "v1e3", "_x"} {
		t.Run(tag, func(t *testing.T) {
			out := New(tag, true, DefaultKeys)
			assert.Equal(t, "image_tag: "+tag+"\npromote_deployment: true\n", string(out), "plain")
			v11, v12 := readBack(t, out)
			assert.Equal(t, tag, v11)
			assert.Equal(t, tag, v12)
		})
	}
}

// FuzzTagReadsBackAsString: whatever valid tag is written, both YAML
// versions read the file back with that tag as a string.
func FuzzTagReadsBackAsString(f *testing.F) {
	for _, seed := range []string{"v1", "yes", "1e3", "0x1F", "1_0", "2026-01-01", "NO", "~"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		if !validTag(tag) {
			return
		}
		file, err := Parse([]byte("image_tag: v1 # c\npromote_deployment: false\n"), DefaultKeys)
		require.NoError(t, err)
		for _, out := range [][]byte{New(tag, true, DefaultKeys), must(file.Set(tag, true))} {
			v11, v12 := readBack(t, out)
			require.Equal(t, tag, v11, "YAML 1.1 reading of %q", out)
			require.Equal(t, tag, v12, "YAML 1.2 reading of %q", out)
		}
	})
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestCustomKeys(t *testing.T) {
	keys := Keys{Tag: "tag", Promote: "promote", AutoDeploy: "auto"}
	f, err := Parse([]byte("tag: v1\nauto: true\n"), keys)
	require.NoError(t, err)
	assert.True(t, f.AutoDeploy())
	out, err := f.Set("v2", true)
	require.NoError(t, err)
	assert.Equal(t, "tag: v2\npromote: true\nauto: true\n", string(out))
}

// FuzzSet: parsing never panics, and an edit of a parseable file always
// re-parses with the new tag and flag and every other key unchanged.
func FuzzSet(f *testing.F) {
	for _, seed := range []string{
		"image_tag: v1\npromote_deployment: true\n",
		"# c\nimage_tag: 'v1' # x\r\nautomatic_deploys_enabled: true\r\n",
		"{image_tag: v1, other: [1, 2]}",
		"---\nimage_tag: \"v1\"\n...\n",
		"a: 1\nb:\n  c: d\n",
		"",
		"image_tag: &a v1\nx: *a\n",
	} {
		f.Add([]byte(seed), "v2", true)
	}
	f.Fuzz(func(t *testing.T, src []byte, tag string, promote bool) {
		file, err := Parse(src, DefaultKeys)
		if err != nil {
			return
		}
		if !validTag(tag) {
			return
		}
		out, err := file.Set(tag, promote)
		if err != nil {
			assert.ErrorIs(t, err, ErrCannotEdit)
			return
		}
		g, err := Parse(out, DefaultKeys)
		require.NoError(t, err, "edited file must parse: %q", out)
		got, ok := g.Tag()
		require.True(t, ok)
		require.Equal(t, tag, got)
		require.Equal(t, promote, g.Promote())
		require.Equal(t, file.others(), g.others())
	})
}

// validTag mirrors the CLI's tag rule: [A-Za-z0-9._-]{1,128}.
func validTag(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func BenchmarkParseAndSet(b *testing.B) {
	src := []byte("# frontend in staging\nimage_tag: v1795 # set by CI\nautomatic_deploys_enabled: true\npromote_deployment: true\n")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		f, err := Parse(src, DefaultKeys)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Set("v1796", true); err != nil {
			b.Fatal(err)
		}
	}
}
