package plugins

import (
	"context"
	"testing"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/core"
)

func BenchmarkJoinDecide(b *testing.B) {
	ctx := context.Background()
	m, err := NewManager(DefaultConfig().WithCacheDir(cacheDir), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close(ctx)
	err = m.Load(ctx, Spec{Name: "testplug", Version: "v1", Module: goPlugin(b, "testdata/testplug"),
		Config: []byte(`{"version":"v1"}`), Capabilities: abi.Capabilities})
	if err != nil {
		b.Fatal(err)
	}
	req := core.PolicyRequest{Action: core.ActionJoin, Room: "r1", Claims: core.Claims{Identity: "a"}}
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Decide(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
