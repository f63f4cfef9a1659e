package redact

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
)

// Handler returns a slog handler that masks secrets in each record's
// message and attributes (keys and values, nested groups, errors and any
// other value that prints one) before h encodes them. Masking the encoded
// line is not enough: JSON and the text format escape `"` and `\`, so a
// secret holding them no longer matches once written.
//
// Attributes given to Logger.With are kept as given and masked when a record
// is handled, so a secret registered after With is masked too.
func (r *Redactor) Handler(h slog.Handler) slog.Handler {
	return &handler{r: r, base: h}
}

type handler struct {
	r    *Redactor
	base slog.Handler // without ops
	ops  []handlerOp  // With and WithGroup calls, in order
}

// handlerOp is one WithGroup (group set) or WithAttrs call.
type handlerOp struct {
	group string
	attrs []slog.Attr
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.base.Enabled(ctx, l) }

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return &handler{r: h.r, base: h.base, ops: append(slices.Clip(h.ops), handlerOp{attrs: slices.Clone(attrs)})}
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &handler{r: h.r, base: h.base, ops: append(slices.Clip(h.ops), handlerOp{group: name})}
}

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := h.base
	for _, op := range h.ops {
		if op.group != "" {
			out = out.WithGroup(h.r.String(op.group))
		} else {
			out = out.WithAttrs(h.r.attrs(op.attrs))
		}
	}
	masked := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		masked.AddAttrs(h.r.attr(a))
		return true
	})
	return out.Handle(ctx, masked)
}

func (r *Redactor) attrs(as []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = r.attr(a)
	}
	return out
}

func (r *Redactor) attr(a slog.Attr) slog.Attr {
	return slog.Attr{Key: r.String(a.Key), Value: r.value(a.Value)}
}

// value masks v. Numbers, booleans, times and durations are kept as they
// are; any other value whose printed form holds a secret becomes that form,
// masked (the handlers print errors with Error() and other values with
// %+v, or as JSON, which holds the same strings).
func (r *Redactor) value(v slog.Value) slog.Value {
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(r.String(v.String()))
	case slog.KindGroup:
		return slog.GroupValue(r.attrs(v.Group())...)
	case slog.KindAny:
		var printed string
		switch x := v.Any().(type) {
		case error:
			printed = x.Error()
		case []byte:
			printed = string(x)
		default:
			printed = fmt.Sprintf("%+v", x)
		}
		if masked := r.String(printed); masked != printed {
			return slog.StringValue(masked)
		}
	}
	return v
}
