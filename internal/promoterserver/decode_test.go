package promoterserver

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"workflow":{"metadata":{"name":"w","namespace":"n","uid":"u"}},"template":{"name":"t","plugin":{"promoter":{"promote":{"app":"frontend","from":"integration","tag":"v42"}}}}}`,
		`{"workflow":{"metadata":{"uid":"u"}},"template":{"name":"t","plugin":{"slack":{"channel":"#x"}}}}`,
		`{"template":{"name":"t","container":{"image":"alpine"}}}`,
		`{"template":{"plugin":{"promoter":{"promote":{"app":"frontend"}}}}}`,
		`{"template":{"plugin":{"promoter":{"promote":null}}}}`,
		`{"template":{"plugin":{"promoter":[1,2]}}}`,
		`{"template":{"plugin":{"a":1,"b":2}}}`,
		`{"template":null}`,
		`[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		args, promote, ours, err := Decode(body)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error does not wrap ErrBadRequest: %v", err)
			}
			return
		}
		if args.Template == nil {
			t.Fatal("accepted a request without a template")
		}
		if ours && (promote.App == "" || promote.From == "" || promote.Tag == "") {
			t.Fatalf("accepted a promote with a missing argument: %+v", promote)
		}
		if !ours && promote != (Args{}) {
			t.Fatalf("not ours but arguments decoded: %+v", promote)
		}
	})
}

// Decode reads the workflow's metadata and the template's name and plugin
// arguments, nothing else of the template: a field the promoter does not
// use, whatever its shape (a newer Argo's), does not stop a promotion;
// the plugin arguments are still checked as Argo checks them (one key).
func TestDecodeReadsOnlyWhatThePromoterUses(t *testing.T) {
	const promote = `"plugin":{"promoter":{"promote":{"app":"frontend","from":"integration","tag":"v42"}}}`
	for _, tc := range []struct {
		name string
		body string
		ours bool
		err  string
	}{
		{"a whole template", `{"workflow":{"metadata":{"name":"w","uid":"u"}},"template":{"name":"t","inputs":{"parameters":[{"name":"p","value":"x"}]},"outputs":{},"metadata":{"labels":{"a":"b"}},"retryStrategy":{"limit":2},` + promote + `}}`, true, ""},
		{"a field in a shape Argo's types would refuse", `{"workflow":{"metadata":{"uid":"u"}},"template":{"name":"t","retryStrategy":"twice",` + promote + `}}`, true, ""},
		{"two plugins in one template", `{"template":{"name":"t","plugin":{"promoter":{},"slack":{}}}}`, false, "expected exactly one key"},
		{"a template that is not an object", `{"template":"t"}`, false, "body is not an ExecuteTemplateArgs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args, promote, ours, err := Decode([]byte(tc.body))
			if tc.err != "" {
				require.ErrorIs(t, err, ErrBadRequest)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.ours, ours)
			assert.Equal(t, Args{App: "frontend", From: "integration", Tag: "v42"}, promote)
			assert.Equal(t, "u", args.Workflow.ObjectMeta.UID)
			assert.Equal(t, "t", args.Template.Name)
		})
	}
}
