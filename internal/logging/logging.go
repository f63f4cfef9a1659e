// Package logging sets up the one-line-per-event slog logger every step
// uses: text on a terminal, JSON otherwise (Argo collects pod logs), always
// through a redacting writer so secrets never reach a log line.
package logging

import (
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/term"
)

// Formats accepted by --log-format.
const (
	FormatAuto = "auto"
	FormatText = "text"
	FormatJSON = "json"
)

// New returns a logger writing to w in the given format. "auto" picks text
// when w is a terminal and JSON otherwise.
func New(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case FormatAuto, "":
		if f, ok := w.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case FormatText:
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case FormatJSON:
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want auto, text or json", format)
	}
}
