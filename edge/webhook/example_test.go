package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/edge"
	"github.com/parleyhq/parley/edge/webhook"
)

// A single node: a FileStore in the data directory records presence
// events; a Pipeline turns them into webhooks (here with a Hook written in
// Go; a node uses its presence plugins) and delivers them, signed with the
// store's key, which GET /pki publishes.
func Example() {
	dir, _ := os.MkdirTemp("", "parley-webhooks")
	defer os.RemoveAll(dir)
	store, err := webhook.OpenFileStore(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		panic(err)
	}
	defer store.Close()
	ctx := context.Background()
	if _, err := store.EnsureSigningKey(ctx); err != nil {
		panic(err)
	}

	got := make(chan string, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("webhook-id")
	}))
	defer receiver.Close()

	hook := webhook.HookFunc(func(_ context.Context, ev core.PresenceEvent) ([]core.Webhook, error) {
		body, _ := json.Marshal(map[string]string{"event": string(ev.Kind), "room": ev.Room, "identity": ev.Identity})
		return []core.Webhook{{ID: "msg_" + ev.ID, Room: ev.Room, URL: receiver.URL + "/hooks", Body: body}}, nil
	})
	p, err := webhook.New(webhook.DefaultConfig(), store, hook, slog.New(slog.DiscardHandler))
	if err != nil {
		panic(err)
	}
	store.OnCommit(p.Notify) // deliver as soon as an event is committed

	mux := http.NewServeMux()
	mux.Handle("GET /pki", edge.PKIHandler(store))

	runCtx, stop := context.WithCancel(ctx) // on a cluster: cancel when leadership is lost
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()

	store.Presence(ctx, core.PresenceEvent{Kind: core.PresenceJoined, Room: "lobby", Identity: "ada"})
	select {
	case id := <-got:
		fmt.Println("delivered:", len(id) > 0)
	case <-time.After(10 * time.Second):
		fmt.Println("not delivered")
	}
	stop()
	<-done
	// Output: delivered: true
}
