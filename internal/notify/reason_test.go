package notify

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/testsupport/slackserver"
)

// encodeReason gives cfg's reason in encoding enc, as a workflow would.
func encodeReason(cfg *Config, enc string) {
	cfg.ReasonEncoding = enc
	if enc == EncodingBase64 {
		cfg.Reason = base64.StdEncoding.EncodeToString([]byte(cfg.Reason))
	}
}

// A reason read base64 is cleaned and bounded as a text one: Argo's
// markup arrives as written, control characters, bidirectional overrides
// and invalid UTF-8 (which base64 can carry, unlike an environment
// variable) do not.
func TestReasonIsDecodedAndCleaned(t *testing.T) {
	for _, tc := range []struct {
		name, reason, want string
	}{
		{"argo markup", "held: INC-1 {{workflow.name}} {{=1+1}} {{= sprig.upper('x') }}", "held: INC-1 {{workflow.name}} {{=1+1}} {{= sprig.upper('x') }}"},
		{"lines and tabs", "  a\r\nb\tc\n\n", "a b c"},
		{"controls", "nul\x00 bell\a esc\x1b[31m del\x7f", "nul bell esc[31m del"},
		{"bidirectional overrides", "\u202eevil\u202c \u2066x\u2069", "evil x"},
		{"invalid UTF-8", "bad \xff\xfe end", "bad \uFFFD end"},
		{"long", strings.Repeat("é", maxReason+10), strings.Repeat("é", maxReason-1) + "…"},
		{"empty", "", ""},
	} {
		for _, enc := range []string{"", EncodingText, EncodingBase64} {
			t.Run(tc.name+"/"+enc, func(t *testing.T) {
				if enc != EncodingBase64 && !utf8.ValidString(tc.reason) {
					t.Skip("a flag's text is UTF-8")
				}
				cfg := Config{Reason: tc.reason}
				encodeReason(&cfg, enc)
				got, err := readReason(cfg)
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
				assert.LessOrEqual(t, utf8.RuneCountInString(got), maxReason)
			})
		}
	}
}

// A base64 reason is decoded white space and all (a wrapped encoding).
func TestBase64ReasonMayBeWrapped(t *testing.T) {
	enc := base64.StdEncoding.EncodeToString([]byte("stale: integration now runs v43"))
	got, err := readReason(Config{Reason: enc[:8] + "\n" + enc[8:] + "\n", ReasonEncoding: EncodingBase64})
	require.NoError(t, err)
	assert.Equal(t, "stale: integration now runs v43", got)
}

// A bad --reason-encoding, or a reason that is not the base64 it says,
// is exit 2 with one line naming the flag, before anything is posted: in
// a deployment's message and in a report's.
func TestReasonBadInput(t *testing.T) {
	srv := slackserver.Start(t)
	for _, kind := range []struct {
		name string
		cfg  func() Config
	}{
		{"deployment", func() Config { return base(srv) }},
		{"report", func() Config { return reportConfig(t, srv, "*Release plan*\n") }},
	} {
		for _, tc := range []struct {
			name, reason, encoding, line string
		}{
			{"an unknown encoding", "promoted", "gzip", `--reason-encoding "gzip": want text or base64`},
			{"a case not known", "promoted", "Base64", `--reason-encoding "Base64": want text or base64`},
			{"plain text as base64", "stale: integration now runs v43", EncodingBase64,
				"--reason is not base64 (--reason-encoding base64): illegal base64 data at input byte 5"},
			{"cut short", "cHJvbW90ZW", EncodingBase64, "--reason is not base64 (--reason-encoding base64): illegal base64 data at input byte 8"},
			{"URL-safe base64", "Pz8_", EncodingBase64, "--reason is not base64 (--reason-encoding base64): illegal base64 data at input byte 3"},
		} {
			t.Run(kind.name+"/"+tc.name, func(t *testing.T) {
				cfg := kind.cfg()
				cfg.Reason, cfg.ReasonEncoding = tc.reason, tc.encoding
				_, err := Run(context.Background(), cfg)
				require.Error(t, err)
				assert.Equal(t, exitcode.Invalid, exitcode.Code(err))
				assert.Equal(t, tc.line, err.Error())
				assert.NotContains(t, err.Error(), "\n")
			})
		}
	}
	assert.Zero(t, len(srv.Posts()), "invalid input posts nothing")
}

// Whatever bytes a base64 reason decodes to, it reads as the text would
// (valid UTF-8), or as that text made valid, and never fails.
func FuzzBase64Reason(f *testing.F) {
	for _, s := range []string{"promoted", "{{workflow.name}} {{=1+1}}", "\x00\xff\u202e", strings.Repeat("é", 900), ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reason string) {
		got, err := readReason(Config{Reason: base64.StdEncoding.EncodeToString([]byte(reason)), ReasonEncoding: EncodingBase64})
		require.NoError(t, err)
		assert.True(t, utf8.ValidString(got))
		assert.NotContains(t, got, "\n")
		assert.LessOrEqual(t, utf8.RuneCountInString(got), maxReason)
		text, err := readReason(Config{Reason: strings.ToValidUTF8(reason, "\uFFFD")})
		require.NoError(t, err)
		assert.Equal(t, text, got)
	})
}
