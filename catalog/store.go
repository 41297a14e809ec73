package catalog

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// KVBucket is the JetStream key-value bucket that holds the catalog.
const KVBucket = "sessionsql_catalog"

// KVStore keeps the catalog in a JetStream key-value bucket (file storage,
// so it survives restarts of the embedded server).
type KVStore struct {
	kv jetstream.KeyValue
}

// NewKVStore opens (creating if needed) the catalog bucket.
func NewKVStore(ctx context.Context, js jetstream.JetStream) (*KVStore, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      KVBucket,
		Description: "sessionsql catalog: sources and materialized views",
		Storage:     jetstream.FileStorage,
		History:     1,
	})
	if err != nil {
		return nil, fmt.Errorf("open catalog bucket %s: %w", KVBucket, err)
	}
	return &KVStore{kv: kv}, nil
}

// KV keys allow only [-/_=.a-zA-Z0-9], but a quoted identifier may hold
// anything: the name part of a key is base64url-encoded.
func kvKey(key string) string {
	i := strings.IndexByte(key, '.')
	return key[:i+1] + base64.RawURLEncoding.EncodeToString([]byte(key[i+1:]))
}

func fromKVKey(k string) (string, error) {
	i := strings.IndexByte(k, '.')
	if i < 0 {
		return "", fmt.Errorf("malformed catalog key %q", k)
	}
	name, err := base64.RawURLEncoding.DecodeString(k[i+1:])
	if err != nil {
		return "", fmt.Errorf("malformed catalog key %q: %w", k, err)
	}
	return k[:i+1] + string(name), nil
}

// Put implements Store.
func (s *KVStore) Put(ctx context.Context, key string, val []byte) error {
	_, err := s.kv.Put(ctx, kvKey(key), val)
	return err
}

// Delete implements Store.
func (s *KVStore) Delete(ctx context.Context, key string) error {
	// Purge, not Delete: nothing of a dropped definition is kept.
	return s.kv.Purge(ctx, kvKey(key))
}

// List implements Store.
func (s *KVStore) List(ctx context.Context) (map[string][]byte, error) {
	out := map[string][]byte{}
	// The catalog is small: Keys, which loads every key at once, fits.
	names, err := s.kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, k := range names {
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // purged since listed
		}
		if err != nil {
			return nil, fmt.Errorf("read catalog key %q: %w", k, err)
		}
		name, err := fromKVKey(k)
		if err != nil {
			return nil, err
		}
		out[name] = e.Value()
	}
	return out, nil
}

// MemStore keeps the catalog in memory (tests, and `serve` runs that need
// no persistence).
type MemStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore { return &MemStore{m: map[string][]byte{}} }

// Put implements Store.
func (s *MemStore) Put(_ context.Context, key string, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = append([]byte(nil), val...)
	return nil
}

// Delete implements Store.
func (s *MemStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// List implements Store.
func (s *MemStore) List(context.Context) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m), nil
}
