package source

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/nats-io/nats.go/jetstream"
)

// publishWindow bounds the acks Publish waits for at once: nats.go stalls
// an async publisher with more than 4,000 outstanding (its default), so a
// large INSERT publishes in windows and waits for each.
const publishWindow = 1024

// Publish publishes payloads to subject, in order, asynchronously, and
// waits until the stream has acknowledged every one. It returns the first
// error (or ctx.Err()); messages before the failing one may have been
// stored. payloads must not change until Publish returns.
func Publish(ctx context.Context, js jetstream.JetStream, subject string, payloads [][]byte) error {
	for start := 0; start < len(payloads); start += publishWindow {
		end := min(start+publishWindow, len(payloads))
		if err := publishAll(ctx, js, subject, payloads[start:end], start, len(payloads)); err != nil {
			return err
		}
	}
	return nil
}

// publishAll publishes one window; offset and total name messages in
// errors.
func publishAll(ctx context.Context, js jetstream.JetStream, subject string, payloads [][]byte, offset, total int) error {
	futures := make([]jetstream.PubAckFuture, 0, len(payloads))
	var first error
	for i, p := range payloads {
		f, err := js.PublishAsync(subject, p)
		if err != nil {
			first = fmt.Errorf("publish message %d of %d to %q: %w", offset+i+1, total, subject, err)
			break
		}
		futures = append(futures, f)
	}
	// Wait for every future even after an error, so that no ack is left
	// outstanding on js when Publish returns.
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if first == nil {
				first = fmt.Errorf("publish message %d of %d to %q: %w", offset+i+1, total, subject, err)
			}
		case <-ctx.Done():
			if first == nil {
				first = ctx.Err()
			}
			return first
		}
	}
	return first
}

// EncodeJSON encodes one row as the JSON object the decoder reads back:
// the fields in column order, NULL as null. values[i] is the value of
// cols[i]: nil for NULL; int64 for BIGINT; float64 (or int64) for DOUBLE
// PRECISION; string for TEXT; bool for BOOLEAN; time.Time or
// arrow.Timestamp (milliseconds) for TIMESTAMP and TIMESTAMPTZ.
// Timestamps are written as RFC 3339 in UTC with milliseconds
// ("2024-01-02T03:04:05.678Z"). What the decoder would reject is an error
// instead: NaN and infinities, which JSON cannot express, timestamps
// outside years 0000-9999, strings that are not UTF-8, and values of the
// wrong Go type.
func EncodeJSON(cols []Column, values []any) ([]byte, error) {
	if len(values) != len(cols) {
		return nil, fmt.Errorf("%d values for %d columns", len(values), len(cols))
	}
	b := make([]byte, 0, 128)
	b = append(b, '{')
	for i, c := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendJSONString(b, c.Name); err != nil {
			return nil, fmt.Errorf("column %d: name: %w", i+1, err)
		}
		b = append(b, ':')
		if b, err = appendValue(b, c, values[i]); err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
	}
	return append(b, '}'), nil
}

func appendValue(b []byte, c Column, v any) ([]byte, error) {
	if v == nil {
		return append(b, "null"...), nil
	}
	k, ok := kindOf(c.Type)
	if !ok {
		return nil, fmt.Errorf("type %v is not supported", c.Type)
	}
	switch k {
	case kindInt64:
		if x, ok := v.(int64); ok {
			return strconv.AppendInt(b, x, 10), nil
		}
	case kindFloat64:
		switch x := v.(type) {
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("%v cannot be written as JSON", x)
			}
			return strconv.AppendFloat(b, x, 'g', -1, 64), nil
		case int64:
			return strconv.AppendInt(b, x, 10), nil
		}
	case kindString:
		if x, ok := v.(string); ok {
			return appendJSONString(b, x)
		}
	case kindBool:
		if x, ok := v.(bool); ok {
			return strconv.AppendBool(b, x), nil
		}
	case kindTimestamp:
		var ms int64
		switch x := v.(type) {
		case time.Time:
			ms = x.UnixMilli()
		case arrow.Timestamp:
			ms = int64(x)
		default:
			return nil, fmt.Errorf("cannot encode %T as %v", v, c.Type)
		}
		if ms < minMillis || ms > maxMillis {
			// The decoder would reject it: fail the INSERT instead.
			return nil, fmt.Errorf("timestamp %d ms is outside years 0000-9999", ms)
		}
		b = append(b, '"')
		b = time.UnixMilli(ms).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		return append(b, '"'), nil
	}
	return nil, fmt.Errorf("cannot encode %T as %v", v, c.Type)
}

// appendJSONString appends s as a JSON string literal. s must be UTF-8.
func appendJSONString(b []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("string is not valid UTF-8")
	}
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := range len(s) {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"'), nil
}
