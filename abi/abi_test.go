package abi

import "testing"

func TestModuleNames(t *testing.T) {
	cases := []struct {
		name  string
		cap   string
		major int
		ok    bool
	}{
		{"parley_v1", "", 1, true},
		{"parley_v2", "", 2, true},
		{"parley_kv_v1", "kv", 1, true},
		{"parley_log_v12", "log", 12, true},
		{"parley_some_thing_v3", "some_thing", 3, true},
		{"parley_", "", 0, false},
		{"parley_v", "", 0, false},
		{"parley_kv", "", 0, false},
		{"parley_kvv1", "", 0, false},
		{"parley_v-1", "", 0, false},
		{"parley__v1", "", 0, false},
		{"env", "", 0, false},
		{"wasi_snapshot_preview1", "", 0, false},
	}
	for _, tc := range cases {
		c, major, ok := ParseModuleName(tc.name)
		if c != tc.cap || major != tc.major || ok != tc.ok {
			t.Errorf("%s: got %q %d %v", tc.name, c, major, ok)
		}
	}
	for _, c := range Capabilities {
		if got, major, ok := ParseModuleName(c.Module()); !ok || got != string(c) || major != Major {
			t.Errorf("%s round trip: %q %d %v", c.Module(), got, major, ok)
		}
	}
	if ModuleName("", Major) != ModuleCore || CapKV.Module() != ModuleKV || CapWebhook.Module() != ModuleWebhook {
		t.Error("module constants disagree with ModuleName")
	}
}

func TestHooks(t *testing.T) {
	for _, h := range Hooks {
		if got, ok := HookForExport(h.Export()); !ok || got != h || !h.Valid() {
			t.Errorf("%s", h)
		}
	}
	if !HookPresence.FailsOpen() || HookJoin.FailsOpen() || HookAuth.FailsOpen() {
		t.Error("fail-open policy")
	}
	if _, ok := HookForExport("_start"); ok {
		t.Error("_start is a hook")
	}
}

func TestDenialCodes(t *testing.T) {
	if !ValidDenialCode(CodeRoomFull) || ValidDenialCode("internal") || ValidDenialCode("") {
		t.Error("denial codes")
	}
	if StatusText(StatusQuota) != "quota exceeded" || StatusText(12) != "ok" {
		t.Error("status text")
	}
}

func FuzzParseModuleName(f *testing.F) {
	f.Add("parley_kv_v1")
	f.Fuzz(func(t *testing.T, name string) {
		c, major, ok := ParseModuleName(name)
		if ok && ModuleName(c, major) != name {
			t.Fatalf("%q parsed as %q v%d", name, c, major)
		}
	})
}
