// Package logging sets up the one-line-per-event slog logger every step
// uses: text on a terminal, JSON otherwise (Argo collects pod logs). Secrets
// are masked in every record before it is encoded, so escaping (a `"` or `\`
// in a password) cannot hide one from the mask.
package logging

import (
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/term"

	"github.com/slipway-deploy/slipway/internal/redact"
)

// Formats accepted by --log-format.
const (
	FormatAuto = "auto"
	FormatText = "text"
	FormatJSON = "json"
)

// New returns a logger writing to w in the given format, masking red's
// secrets in each record before encoding it. "auto" picks text when w is a
// terminal and JSON otherwise.
func New(w io.Writer, format string, level slog.Level, red *redact.Redactor) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch format {
	case FormatAuto, "":
		if f, ok := w.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) {
			h = slog.NewTextHandler(w, opts)
		} else {
			h = slog.NewJSONHandler(w, opts)
		}
	case FormatText:
		h = slog.NewTextHandler(w, opts)
	case FormatJSON:
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: want auto, text or json", format)
	}
	return slog.New(red.Handler(h)), nil
}
