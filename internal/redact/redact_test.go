package redact

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRedactor(t *testing.T) {
	var r Redactor
	r.Add("s3cr/t+tok", "", "  ")
	tests := []struct {
		in, want string
	}{
		{"token s3cr/t+tok here", "token *** here"},
		{"https://x:s3cr%2Ft+tok@host/repo", "https://x:***@host/repo"},
		{"q=s3cr%2Ft%2Btok", "q=***"},
		{"nothing secret", "nothing secret"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, r.String(tt.in), tt.in)
	}
}

func TestWriterMasksEachWrite(t *testing.T) {
	var r Redactor
	r.Add("hunter2")
	var buf bytes.Buffer
	w := r.Writer(&buf)
	n, err := fmt.Fprintf(w, "password=%s\n", "hunter2")
	assert.NoError(t, err)
	assert.Equal(t, len("password=hunter2\n"), n)
	assert.Equal(t, "password=***\n", buf.String())
}

func TestURL(t *testing.T) {
	var r Redactor
	assert.Equal(t, "postgres://app:***@db:5432/x", r.URL("postgres://app:pw@db:5432/x"))
	assert.Equal(t, "https://host/repo.git", r.URL("https://host/repo.git"))
	var nilR *Redactor
	assert.Equal(t, "a", nilR.String("a"))
}

// Text encoded before it reaches a redacting writer (an error's %q, a JSON
// line) still has the secret masked.
func TestRedactorMasksEncodedForms(t *testing.T) {
	const secret = "p&ss<w>\"o'rd\\ü€\tx"
	var r Redactor
	r.Add(secret)
	jsonPlain := func(s string) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		require.NoError(t, enc.Encode(s))
		return b.String()
	}
	tests := []struct {
		name    string
		encoded string
	}{
		{"raw", "got " + secret},
		{"go quoted", fmt.Sprintf("status: %q is not a status", secret)},
		{"json", string(must(json.Marshal(map[string]string{"v": secret})))},
		{"json without html escaping", jsonPlain(secret)},
		{"xml chardata", string(must(xml.Marshal(struct {
			XMLName xml.Name `xml:"x"`
			V       string   `xml:",chardata"`
		}{V: secret})))},
		{"xml attribute", string(must(xml.Marshal(struct {
			XMLName xml.Name `xml:"x"`
			V       string   `xml:"v,attr"`
		}{V: secret})))},
		{"url query", "https://h/?q=" + url.QueryEscape(secret)},
		{"url user info", "https://" + url.UserPassword("u", secret).String() + "@h/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.String(tt.encoded)
			assert.Contains(t, got, Mask)
			assert.NotContains(t, got, "ss<w>")
			assert.NotContains(t, got, "ss&lt;w")
			assert.NotContains(t, got, `ss\u003cw`)
			assert.NotContains(t, got, "ss%3Cw")
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestHandlerMasksEveryKindOfValue(t *testing.T) {
	const secret = `s3cr"t\ü`
	var r Redactor
	r.Add(secret)
	var buf bytes.Buffer
	l := slog.New(r.Handler(slog.NewJSONHandler(&buf, nil)))
	type creds struct{ User, Password string }
	l.WithGroup("g").With(secret+"key", 1).Info("m",
		"struct", creds{"u", secret},
		"map", map[string]string{"p": secret},
		"valuer", valuer(secret),
		"plain", creds{"u", "p"},
		"dur", time.Second)
	var m map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &m), buf.String())
	assert.NotContains(t, buf.String(), `s3cr`)
	assert.Equal(t, map[string]any{
		"***key": float64(1),
		"struct": "{User:u Password:***}",
		"map":    "map[p:***]",
		"valuer": "token ***",
		"plain":  map[string]any{"User": "u", "Password": "p"}, // no secret: left to the handler as it is
		"dur":    float64(time.Second),
	}, m["g"])
}

type valuer string

func (v valuer) LogValue() slog.Value { return slog.StringValue("token " + string(v)) }
