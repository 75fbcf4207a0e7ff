package plugins

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/core"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	m, err := NewManager(DefaultConfig().WithCacheDir(cacheDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	start := time.Now()
	err = m.Load(ctx, Spec{Name: "testplug", Version: "v1", Module: goPlugin(t, "testdata/testplug"),
		Config: []byte(`{"version":"v1"}`), Capabilities: abi.Capabilities})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("load %v", time.Since(start))
	d, err := m.Decide(ctx, core.PolicyRequest{Action: core.ActionJoin, Room: "r1", Claims: core.Claims{Identity: "a"}})
	t.Logf("%+v %v", d, err)
	d, err = m.Decide(ctx, core.PolicyRequest{Action: core.ActionJoin, Room: "loop", Claims: core.Claims{Identity: "a"}})
	t.Logf("%+v %v", d, err)
	d, err = m.Decide(ctx, core.PolicyRequest{Action: core.ActionJoin, Room: "bomb", Claims: core.Claims{Identity: "a"}})
	t.Logf("%+v %v", d, err)
	d, err = m.Decide(ctx, core.PolicyRequest{Action: core.ActionJoin, Room: "exit", Claims: core.Claims{Identity: "a"}})
	t.Logf("%+v %v", d, err)
	d, err = m.Decide(ctx, core.PolicyRequest{Action: core.ActionJoin, Room: "panic", Claims: core.Claims{Identity: "a"}})
	t.Logf("%+v %v", d, err)
	for i := 0; i < 5; i++ {
		s := time.Now()
		d, err = m.Decide(ctx, core.PolicyRequest{Action: core.ActionJoin, Room: "r1", Claims: core.Claims{Identity: "a"}})
		t.Logf("%+v %v %v", d, err, time.Since(s))
	}
	t.Logf("%+v", m.List())
}
