// Package slack posts messages to a Slack incoming webhook: the Block Kit
// types a message is made of, and a client that retries rate limits (429,
// waiting as long as Retry-After says) and server errors (5xx) with
// jittered backoff until a deadline. The webhook URL is a secret: no error
// or log line the client makes holds it.
package slack

import (
	"strings"
	"unicode/utf8"
)

// Message is an incoming webhook's payload. Text is the fallback Slack
// shows in notifications and where blocks cannot be drawn.
type Message struct {
	Channel string  `json:"channel,omitempty"`
	Text    string  `json:"text"`
	Blocks  []Block `json:"blocks"`
}

// Block is a Block Kit layout block: a header, a section or a context.
type Block struct {
	Type     string `json:"type"`
	Text     *Text  `json:"text,omitempty"`
	Fields   []Text `json:"fields,omitempty"`
	Elements []Text `json:"elements,omitempty"`
}

// Text is a text object: plain_text (shown as is) or mrkdwn (Slack's
// markup: escape what came from outside with Escape).
type Text struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

// Slack's limits on the texts of each block (Block Kit reference), and on
// the blocks of a message.
const (
	maxHeader  = 150
	maxSection = MaxSection
	maxField   = 2000
	maxFields  = 10
	maxContext = 10

	// MaxSection is the most characters a section's text may have.
	MaxSection = 3000
	// MaxBlocks is the most blocks a message may have.
	MaxBlocks = 50
)

// Header is a header block: plain text, shortened to Slack's 150
// characters.
func Header(s string) Block {
	return Block{Type: "header", Text: &Text{Type: "plain_text", Text: Shorten(s, maxHeader), Emoji: true}}
}

// Section is a section block of mrkdwn text and up to ten mrkdwn fields
// (shown two a row); empty fields are left out.
func Section(text string, fields ...string) Block {
	b := Block{Type: "section"}
	if text != "" {
		b.Text = &Text{Type: "mrkdwn", Text: Shorten(text, maxSection)}
	}
	for _, f := range fields {
		if f != "" && len(b.Fields) < maxFields {
			b.Fields = append(b.Fields, Text{Type: "mrkdwn", Text: Shorten(f, maxField)})
		}
	}
	return b
}

// Context is a context block (small grey text) of up to ten mrkdwn
// elements; empty ones are left out.
func Context(elements ...string) Block {
	b := Block{Type: "context"}
	for _, e := range elements {
		if e != "" && len(b.Elements) < maxContext {
			b.Elements = append(b.Elements, Text{Type: "mrkdwn", Text: Shorten(e, maxSection)})
		}
	}
	return b
}

// Escape makes outside text safe inside mrkdwn: Slack reads &, < and > as
// markup (links, <!channel> mentions), so they become entities.
func Escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// EscapeShort is Escape(s) in at most max characters: cut between
// characters of s (never inside an entity), ending with "…" when cut.
func EscapeShort(s string, max int) string {
	if e := Escape(s); utf8.RuneCountInString(e) <= max {
		return e
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		e := Escape(string(r))
		c := utf8.RuneCountInString(e)
		if n+c > max-1 {
			break
		}
		b.WriteString(e)
		n += c
	}
	return b.String() + "…"
}

// Link is a mrkdwn link to url showing label. A '|' or '>' would end the
// URL early, so they are percent-encoded; & and < as Slack asks.
func Link(url, label string) string {
	url = strings.NewReplacer("&", "&amp;", "<", "%3C", ">", "%3E", "|", "%7C").Replace(url)
	return "<" + url + "|" + Escape(label) + ">"
}

// Shorten cuts s to at most max characters, ending with "…" when cut.
func Shorten(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}
