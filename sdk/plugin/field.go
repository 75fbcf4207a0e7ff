package plugin

import "strings"

// StringField returns the string value of name at the top level of the JSON
// object doc, as encoding/json would find it (the last occurrence wins;
// ok is false when doc is not a valid JSON object, the name is absent or
// its value is not a string). Keys of up to 16 bytes are matched with the
// SDK's fast reader; use it for small lookups such as a role in
// participant metadata without paying for encoding/json in the sandbox.
func StringField(doc, name string) (value string, ok bool) {
	if len(name) > 16 || !strings.HasPrefix(strings.TrimSpace(doc), "{") {
		return "", false
	}
	want := key(name)
	r := newReader([]byte(doc))
	for open := r.open(); open; {
		k, more := r.member()
		switch {
		case !more:
			open = false
		case k == want && r.pad[r.i] == '"':
			value, ok = r.str(), true
		case k == want:
			value, ok = "", false
			r.skip()
		default:
			r.skip()
		}
	}
	if r.end() != nil {
		return "", false
	}
	return value, ok
}
