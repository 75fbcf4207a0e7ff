package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestOpenAPIDocumentsEveryRoute keeps docs/openapi.json in step with the
// endpoints the API mounts: every route is documented with its path
// parameters, credentials and 401 answer, nothing else is, every action
// is listed, and every $ref resolves.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("openapi version %q", v)
	}
	resolve := func(v any) map[string]any {
		m, _ := v.(map[string]any)
		if ref, ok := m["$ref"].(string); ok {
			var cur any = doc
			for _, p := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
				cur = cur.(map[string]any)[p]
			}
			m, _ = cur.(map[string]any)
			if m == nil {
				t.Errorf("$ref %s does not resolve", ref)
			}
		}
		return m
	}
	paths := doc["paths"].(map[string]any)
	s, err := New(DefaultConfig(), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	mounted := map[string]bool{}
	for _, rt := range s.routes {
		method, path, _ := strings.Cut(rt.pattern, " ")
		mounted[strings.ToLower(method)+" "+path] = true
		item, _ := paths[path].(map[string]any)
		opv, _ := item[strings.ToLower(method)].(map[string]any)
		if opv == nil {
			t.Errorf("%s is not documented", rt.pattern)
			continue
		}
		checkOperation(t, rt, path, opv, resolve)
	}
	for path, item := range paths {
		for method := range item.(map[string]any) {
			if !mounted[method+" "+path] {
				t.Errorf("documented %s %s is not served", strings.ToUpper(method), path)
			}
		}
	}
	checkDocumentedActions(t, doc)
	// Every $ref anywhere resolves.
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if _, ok := x["$ref"]; ok {
				resolve(x)
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
}

// checkDocumentedActions compares the documented action names with the
// served ones.
func checkDocumentedActions(t *testing.T, doc map[string]any) {
	t.Helper()
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	enum := schemas["ActionRequest"].(map[string]any)["properties"].(map[string]any)["action"].(map[string]any)["enum"].([]any)
	var got, want []string
	for _, a := range enum {
		got = append(got, a.(string))
	}
	for a := range actionNames {
		want = append(want, a)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("documented actions %v, served %v", got, want)
	}
}

// checkOperation checks one documented operation of route rt: its 401
// answer, its credentials and its path parameters.
func checkOperation(t *testing.T, rt route, path string, opv map[string]any, resolve func(any) map[string]any) {
	t.Helper()
	pathParam := regexp.MustCompile(`\{([a-z]+)\}`)
	if resps, _ := opv["responses"].(map[string]any); resps["401"] == nil {
		t.Errorf("%s: no 401 answer documented", rt.pattern)
	}
	sec, _ := opv["security"].([]any)
	if len(sec) == 0 {
		t.Errorf("%s: no security documented", rt.pattern)
	}
	if rt.admin && (len(sec) != 1 || sec[0].(map[string]any)["AdminToken"] == nil) {
		t.Errorf("%s: admin-only, documented with %v", rt.pattern, sec)
	}
	var documented []string
	params, _ := opv["parameters"].([]any)
	for _, p := range params {
		if pm := resolve(p); pm["in"] == "path" {
			documented = append(documented, pm["name"].(string))
		}
	}
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		if !slices.Contains(documented, m[1]) {
			t.Errorf("%s: path parameter %q not documented", rt.pattern, m[1])
		}
	}
}
