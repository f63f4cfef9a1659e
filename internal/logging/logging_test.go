package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNew(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, FormatAuto, slog.LevelInfo)
	require.NoError(t, err)
	l.Info("pushed", "commit", "abc")
	var m map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &m), "a non-terminal gets JSON")
	assert.Equal(t, "pushed", m["msg"])

	buf.Reset()
	l, err = New(&buf, FormatText, slog.LevelInfo)
	require.NoError(t, err)
	l.Info("pushed", "commit", "abc")
	assert.Contains(t, buf.String(), "msg=pushed commit=abc")

	_, err = New(&buf, "xml", slog.LevelInfo)
	assert.ErrorContains(t, err, "xml")
}
