// Package pgtest gives tests a private schema in the local PostgreSQL.
//
// DSN connects to the server named by $SESSIONSQL_TEST_POSTGRES (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable), creates a
// fresh schema sessionsql_test_<random> and returns a DSN whose search_path
// is that schema, so unqualified names a test creates land there and tests
// running in parallel never see each other's tables. The schema is dropped
// with CASCADE when the test ends.
//
// Without a reachable server a test is skipped with the reason, except
// under CI=true, where it fails: CI must run these tests.
package pgtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN is the environment variable that names the test server.
const EnvDSN = "SESSIONSQL_TEST_POSTGRES"

// DefaultDSN is the test server when EnvDSN is unset.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// connectTimeout bounds how long a test waits for an absent server.
const connectTimeout = 5 * time.Second

// BaseDSN returns the test server's DSN, without a private schema.
func BaseDSN() string {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

// DSN returns a DSN for a fresh schema of its own (see the package
// comment). It skips t (fails it under CI=true) if PostgreSQL cannot be
// reached.
func DSN(t testing.TB) string {
	t.Helper()
	base := BaseDSN()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgtest: PostgreSQL at %s is unreachable (CI=true requires it): %v", redacted(base), err)
		}
		t.Skipf("pgtest: PostgreSQL at %s is unreachable (set %s to use another server): %v", redacted(base), EnvDSN, err)
	}
	defer conn.Close(context.Background())

	schema := fmt.Sprintf("sessionsql_test_%016x", rand.Uint64())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	dsn, err := withSearchPath(base, schema)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// withSearchPath adds search_path=schema to dsn. pgx passes parameters it
// does not know to the server as run-time parameters.
func withSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse %s: %w", EnvDSN, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " search_path=" + schema, nil
}

// redacted hides a password in dsn for messages.
func redacted(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
		return dsn
	}
	if strings.Contains(dsn, "password=") {
		return "(key=value DSN with a password)"
	}
	return dsn
}
