package source

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgerrcode"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
)

// EnsureStream returns the JetStream stream name, creating it over
// subjects (file storage, limits retention) when it does not exist. An
// existing stream's configuration is left alone, whatever its subjects;
// but a stream with work-queue or interest retention is refused with a
// sqlerr error (SQLSTATE 22023), because there acknowledgements delete
// messages and a source must be able to rewind to a checkpoint.
//
// With no subjects, JetStream's default applies: the stream's own name.
func EnsureStream(ctx context.Context, js jetstream.JetStream, name string, subjects []string) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:      name,
			Subjects:  subjects,
			Storage:   jetstream.FileStorage,
			Retention: jetstream.LimitsPolicy,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Created by someone else since we looked: use theirs.
			s, err = js.Stream(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream %q: %w", name, err)
	}
	if r := s.CachedInfo().Config.Retention; r != jetstream.LimitsPolicy {
		return nil, sqlerr.New(pgerrcode.InvalidParameterValue,
			"stream %q uses %s retention", name, r).
			WithDetail("acknowledged messages are deleted from such a stream, so a source could not rewind to a checkpoint").
			WithHint("use a stream with limits retention")
	}
	return s, nil
}

// ConsumerName returns the durable consumer name of a source:
// "sessionsql_<source>". Characters NATS does not allow in a name (and
// anything but ASCII letters, digits, '_' and '-') become '_', and then a
// hash of the original name is appended so that distinct sources keep
// distinct consumers.
func ConsumerName(source string) string {
	ok := source != ""
	var b strings.Builder
	b.WriteString("sessionsql_")
	for i := range len(source) {
		c := source[i]
		if c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		ok = false
	}
	if !ok {
		h := fnv.New32a()
		h.Write([]byte(source))
		fmt.Fprintf(&b, "_%08x", h.Sum32())
	}
	return b.String()
}

// DeleteConsumer deletes the durable consumer of source on stream, for
// DROP SOURCE. A consumer that does not exist is not an error.
func DeleteConsumer(ctx context.Context, js jetstream.JetStream, stream, source string) error {
	err := js.DeleteConsumer(ctx, stream, ConsumerName(source))
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("delete consumer of source %q on stream %q: %w", source, stream, err)
	}
	return nil
}
