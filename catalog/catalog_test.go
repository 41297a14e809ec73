package catalog

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
)

// runJetStream starts a real NATS server with JetStream in the test
// process, storing under a temporary directory.
func runJetStream(t *testing.T, dir string) jetstream.JetStream {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nc.Close()
		s.Shutdown()
		s.WaitForShutdown()
	})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := sqlerr.Code(err); err == nil || got != code {
		t.Fatalf("error %v has code %s, want %s", err, got, code)
	}
}

func exercise(t *testing.T, store Store) {
	ctx := context.Background()
	c, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	src := &Source{Name: "plays", Columns: []Column{{"user_id", "BIGINT"}, {"ts", "TIMESTAMP"}}, TimeColumn: "ts",
		WatermarkDelay: 5 * time.Second, Stream: "PLAYS", Subjects: []string{"plays.>"}, Format: "json", Start: "earliest", SQL: "CREATE SOURCE plays ..."}
	if err := c.AddSource(ctx, src, 15); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.AddSource(ctx, &Source{Name: "plays"}, 15), pgerrcode.DuplicateTable)
	wantCode(t, c.AddView(ctx, &View{Name: "plays_rejects", Source: "plays"}, 1), pgerrcode.DuplicateTable)
	wantCode(t, c.AddView(ctx, &View{Name: "v", Source: "nope"}, 1), pgerrcode.UndefinedTable)
	if err := c.AddView(ctx, &View{Name: "play sessions", Source: "plays", SQL: "CREATE MATERIALIZED VIEW ...", StartSeq: 7}, 1); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.AddSource(ctx, &Source{Name: "play sessions_late"}, 1), pgerrcode.DuplicateTable)
	wantCode(t, c.DropSource(ctx, "plays"), pgerrcode.DependentObjectsStillExist)

	// A restart sees the same definitions.
	c2, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	s2, ok := c2.Source("plays")
	if !ok || s2.WatermarkDelay != 5*time.Second || s2.Subjects[0] != "plays.>" || s2.Columns[1].Type != "TIMESTAMP" {
		t.Fatalf("source after reopen: %+v", s2)
	}
	v2, ok := c2.View("play sessions")
	if !ok || v2.StartSeq != 7 || v2.Created <= s2.Created {
		t.Fatalf("view after reopen: %+v (source created %d)", v2, s2.Created)
	}
	if vs := c2.ViewsOf("plays"); len(vs) != 1 {
		t.Fatalf("ViewsOf = %v", vs)
	}
	if err := c2.DropView(ctx, "play sessions"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c2.DropView(ctx, "play sessions"), pgerrcode.UndefinedTable)
	if err := c2.DropSource(ctx, "plays"); err != nil {
		t.Fatal(err)
	}
	c3, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if len(c3.Sources()) != 0 || len(c3.Views()) != 0 {
		t.Fatalf("dropped definitions came back: %v %v", c3.Sources(), c3.Views())
	}
}

func TestCatalogMemStore(t *testing.T) { exercise(t, NewMemStore()) }

func TestCatalogKVStore(t *testing.T) {
	js := runJetStream(t, t.TempDir())
	store, err := NewKVStore(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, store)
}

// TestCatalogSurvivesServerRestart checks that the catalog is on disk: a
// new embedded server over the same directory sees it.
func TestCatalogSurvivesServerRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	func() {
		js := runJetStream(t, dir)
		store, err := NewKVStore(ctx, js)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Open(ctx, store)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddSource(ctx, &Source{Name: "s", Stream: "S"}, 1); err != nil {
			t.Fatal(err)
		}
	}()
	js := runJetStream(t, dir)
	store, err := NewKVStore(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Source("s"); !ok {
		t.Fatal("source lost across a server restart")
	}
}
