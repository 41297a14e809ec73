package pgtest

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestWithSearchPath(t *testing.T) {
	tests := []struct {
		name, dsn, want string
	}{
		{"url", "postgres://u@h:5432/db?sslmode=disable", "postgres://u@h:5432/db?search_path=s1&sslmode=disable"},
		{"url without query", "postgresql://u@h/db", "postgresql://u@h/db?search_path=s1"},
		{"url with a search_path", "postgres://u@h/db?search_path=public", "postgres://u@h/db?search_path=s1"},
		{"key=value", "host=h dbname=db", "host=h dbname=db search_path=s1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := withSearchPath(tc.dsn, "s1")
			if err != nil || got != tc.want {
				t.Fatalf("withSearchPath(%q) = %q, %v; want %q", tc.dsn, got, err, tc.want)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://u:secret@h/db":  "postgres://u:xxxxx@h/db",
		"postgres://u@h/db":         "postgres://u@h/db",
		"host=h password=secret":    "(key=value DSN with a password)",
		"host=h dbname=db user=bob": "host=h dbname=db user=bob",
	} {
		if got := redacted(dsn); got != want {
			t.Errorf("redacted(%q) = %q, want %q", dsn, got, want)
		}
	}
}

// TestDSN checks that a test gets a schema of its own as search_path and
// that the schema is gone once the test has ended.
func TestDSN(t *testing.T) {
	ctx := context.Background()
	var schema string
	t.Run("inner", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(schema, "sessionsql_test_") {
			t.Fatalf("current_schema() = %q", schema)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE t (a int)"); err != nil {
			t.Fatal(err)
		}
	})
	if schema == "" {
		t.Skip("no PostgreSQL") // the inner test was skipped
	}
	conn, err := pgx.Connect(ctx, BaseDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("schema %s still exists after the test", schema)
	}
}
