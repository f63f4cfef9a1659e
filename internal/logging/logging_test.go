package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipway-deploy/slipway/internal/redact"
)

func TestNew(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, FormatAuto, slog.LevelInfo, nil)
	require.NoError(t, err)
	l.Info("pushed", "commit", "abc")
	var m map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &m), "a non-terminal gets JSON")
	assert.Equal(t, "pushed", m["msg"])

	buf.Reset()
	l, err = New(&buf, FormatText, slog.LevelInfo, nil)
	require.NoError(t, err)
	l.Info("pushed", "commit", "abc")
	assert.Contains(t, buf.String(), "msg=pushed commit=abc")

	_, err = New(&buf, "xml", slog.LevelInfo, nil)
	assert.ErrorContains(t, err, "xml")
}

// The writer here does not redact: whatever is masked was masked by the
// logger itself, before its handler escaped the values.
func TestNewMasksSecretsBeforeEncoding(t *testing.T) {
	const secret = `tok&<>"'\ünïcødé€`
	quoted := strconv.Quote(secret)
	escaped, err := json.Marshal(secret)
	require.NoError(t, err)
	for _, format := range []string{FormatJSON, FormatText} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			red := &redact.Redactor{}
			l, err := New(&buf, format, slog.LevelDebug, red)
			require.NoError(t, err)
			l = l.With("url", "https://u:"+secret+"@host").WithGroup("req")
			red.Add(secret) // after With: still masked
			l.Debug("sent "+secret, "header", "Bearer "+secret, "err", errors.New("refused "+secret),
				"raw", []byte(secret), "n", 3, slog.Group("auth", "password", secret))
			out := buf.String()
			for _, form := range []string{secret, quoted[1 : len(quoted)-1], string(escaped[1 : len(escaped)-1]), "ünïcødé"} {
				assert.NotContains(t, out, form)
			}
			assert.Contains(t, out, "sent ***")
			if format == FormatJSON {
				var m map[string]any
				require.NoError(t, json.Unmarshal(buf.Bytes(), &m), out)
				assert.Equal(t, "https://u:***@host", m["url"])
				assert.Equal(t, map[string]any{"header": "Bearer ***", "err": "refused ***", "raw": "***", "n": float64(3),
					"auth": map[string]any{"password": "***"}}, m["req"])
			} else {
				assert.True(t, strings.HasSuffix(out, `req.n=3 req.auth.password=***`+"\n"), out)
			}
		})
	}
}
