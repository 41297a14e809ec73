package source

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestEmbedded(t *testing.T) {
	if _, err := StartEmbedded(EmbeddedOptions{}); err == nil || err.Error() != "embedded nats: no store directory" {
		t.Fatalf("without a store directory: %v", err)
	}

	dir := t.TempDir()
	e, err := StartEmbedded(EmbeddedOptions{StoreDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if url := e.ClientURL(); !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":4222") {
		t.Errorf("ClientURL %q: want 127.0.0.1 and a random port", url)
	}
	js := connect(t, e.ClientURL())
	info, err := js.AccountInfo(context.Background())
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	if info.Streams != 0 {
		t.Errorf("fresh store has %d streams", info.Streams)
	}
	if _, err := EnsureStream(context.Background(), js, "KEPT", []string{"kept"}); err != nil {
		t.Fatal(err)
	}

	// Shutdown is idempotent and safe from several goroutines.
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(e.Shutdown)
	}
	wg.Wait()
	e.Shutdown()

	// The store survives a restart.
	e2, err := StartEmbedded(EmbeddedOptions{StoreDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Shutdown()
	js2 := connect(t, e2.ClientURL())
	if _, err := js2.Stream(context.Background(), "KEPT"); err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	if _, err := js2.Stream(context.Background(), "GONE"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("missing stream: %v", err)
	}
}
