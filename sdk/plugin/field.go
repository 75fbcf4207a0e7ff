package plugin

import "strings"

// StringField returns the string value of key at the top level of the JSON
// object doc, as encoding/json would find it (the last occurrence wins;
// ok is false when doc is not a valid JSON object, the key is absent or
// its value is not a string). Keys of up to 16 bytes are matched with the
// SDK's fast reader; use it for small lookups such as a role in
// participant metadata without paying for encoding/json in the sandbox.
func StringField(doc, key string) (value string, ok bool) {
	if len(key) > 16 || !strings.HasPrefix(strings.TrimSpace(doc), "{") {
		return "", false
	}
	want := keyCodeOf(key)
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

// keyCodeOf is key for keys known to be at most 16 bytes.
func keyCodeOf(s string) keyCode { return key(s) }
