package plugin

import (
	"encoding/json"
	"testing"
)

func TestStringField(t *testing.T) {
	for _, doc := range []string{
		`{"role":"host"}`, ` { "a": [1, {"role": "x"}], "role" : "vi\"ewer" } `, `{"role":1}`, `{"role":"a","role":"b"}`,
		`{"role":null}`, `{"ROLE":"x"}`, `not json`, `{"role":"x"`, `[]`, ``, `{}`,
	} {
		got, ok := StringField(doc, "role")
		var m map[string]any
		var want string
		var wantOK bool
		if json.Unmarshal([]byte(doc), &m) == nil {
			want, wantOK = m["role"].(string)
		}
		if got != want || ok != wantOK {
			t.Errorf("%s: got %q %v, want %q %v", doc, got, ok, want, wantOK)
		}
	}
}

func FuzzStringField(f *testing.F) {
	f.Add(`{"role":"host","x":[1,2]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		got, ok := StringField(doc, "role")
		var m map[string]json.RawMessage
		if ok && json.Unmarshal([]byte(doc), &m) != nil {
			t.Fatalf("found %q in invalid %q", got, doc)
		}
	})
}
