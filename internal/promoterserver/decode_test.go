package promoterserver

import (
	"errors"
	"testing"
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
