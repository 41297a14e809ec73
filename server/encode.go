package server

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// Wire format codes.
const (
	formatText   int16 = 0
	formatBinary int16 = 1
)

// typeSize is pg_type.typlen of the engine's types, as RowDescription
// reports it.
func typeSize(oid uint32) int16 {
	switch oid {
	case sqltypes.OIDBool:
		return 1
	case sqltypes.OIDInt8, sqltypes.OIDFloat8, sqltypes.OIDTimestamp, sqltypes.OIDTimestampTZ:
		return 8
	case sqltypes.OIDUnknown:
		return -2
	}
	return -1
}

// binarySize is the length of oid's binary format, 0 if it varies.
func binarySize(oid uint32) int {
	switch oid {
	case sqltypes.OIDBool:
		return 1
	case sqltypes.OIDInt2:
		return 2
	case sqltypes.OIDInt4, sqltypes.OIDFloat4, sqltypes.OIDDate:
		return 4
	case sqltypes.OIDInt8, sqltypes.OIDFloat8, sqltypes.OIDTimestamp, sqltypes.OIDTimestampTZ:
		return 8
	}
	return 0
}

// columnOIDs returns the type OID of each column.
func columnOIDs(cols []Column) []uint32 {
	oids := make([]uint32, len(cols))
	for i, c := range cols {
		oids[i] = sqltypes.OID(c.Type)
	}
	return oids
}

// rowDescription describes cols with one format code per column (nil means
// text for all).
func rowDescription(cols []Column, formats []int16) *pgproto3.RowDescription {
	fields := make([]pgproto3.FieldDescription, len(cols))
	for i, c := range cols {
		oid := sqltypes.OID(c.Type)
		var f int16
		if formats != nil {
			f = formats[i]
		}
		fields[i] = pgproto3.FieldDescription{
			Name:         []byte(c.Name),
			DataTypeOID:  oid,
			DataTypeSize: typeSize(oid),
			TypeModifier: -1,
			Format:       f,
		}
	}
	return &pgproto3.RowDescription{Fields: fields}
}

// resultFormats expands a Bind message's result format codes to one per
// column: none means text for all, one applies to all.
func resultFormats(codes []int16, ncols int) ([]int16, error) {
	for _, f := range codes {
		if f != formatText && f != formatBinary {
			return nil, sqlerr.New(pgerrcode.InvalidParameterValue, "unsupported format code: %d", f)
		}
	}
	out := make([]int16, ncols)
	switch len(codes) {
	case 0:
	case 1:
		for i := range out {
			out[i] = codes[0]
		}
	case ncols:
		copy(out, codes)
	default:
		return nil, sqlerr.New(pgerrcode.ProtocolViolation,
			"bind message has %d result formats but query has %d columns", len(codes), ncols)
	}
	return out, nil
}

// encoder turns engine values into DataRow fields and Bind parameters into
// engine values. It holds a pgtype.Map, which is not safe for concurrent
// use: one encoder per connection.
type encoder struct {
	m *pgtype.Map
}

func newEncoder() *encoder { return &encoder{m: pgtype.NewMap()} }

// appendValue appends v, a value of a column of type oid, in format to buf
// and returns the new buffer; a nil result stands for NULL.
func (e *encoder) appendValue(buf []byte, oid uint32, format int16, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	if format == formatBinary {
		out, err := e.m.Encode(oid, pgtype.BinaryFormatCode, v, buf)
		if err != nil {
			return nil, fmt.Errorf("encode %T as binary %s: %w", v, sqltypes.FormatType(oid), err)
		}
		return out, nil
	}
	switch v := v.(type) {
	case string:
		return append(buf, v...), nil
	case int64:
		return strconv.AppendInt(buf, v, 10), nil
	case float64:
		return appendFloat8(buf, v), nil
	case bool:
		if v {
			return append(buf, 't'), nil
		}
		return append(buf, 'f'), nil
	case time.Time:
		if oid == sqltypes.OIDTimestampTZ {
			return e.appendTimestampTZ(buf, v)
		}
		// TIMESTAMP values are UTC wall times; pgtype prints the wall
		// clock as PostgreSQL does ("2024-01-02 03:04:05.678").
		out, err := e.m.Encode(sqltypes.OIDTimestamp, pgtype.TextFormatCode, v, buf)
		if err != nil {
			return nil, fmt.Errorf("encode timestamp %v: %w", v, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("engine returned a value of unsupported type %T for a %s column", v, sqltypes.FormatType(oid))
}

// appendTimestampTZ prints t as PostgreSQL does with TimeZone UTC:
// "2024-01-02 03:04:05.678+00" ("... 00:00:00+00 BC" for BC years).
// pgtype's own timestamptz text ends in "Z", which psql users do not
// expect, so this prints the UTC wall clock and adds the offset.
func (e *encoder) appendTimestampTZ(buf []byte, t time.Time) ([]byte, error) {
	start := len(buf)
	out, err := e.m.Encode(sqltypes.OIDTimestamp, pgtype.TextFormatCode, t.UTC(), buf)
	if err != nil {
		return nil, fmt.Errorf("encode timestamptz %v: %w", t, err)
	}
	if bytes.HasSuffix(out[start:], []byte(" BC")) {
		out = out[:len(out)-3]
		return append(out, "+00 BC"...), nil
	}
	return append(out, "+00"...), nil
}

// appendFloat8 prints f as PostgreSQL 12 and later print float8 with the
// default extra_float_digits: the shortest text that reads back exactly,
// in fixed notation when the decimal exponent is in [-4, 15) and in
// exponent notation (at least two exponent digits) otherwise; Infinity,
// -Infinity and NaN spelled out.
func appendFloat8(buf []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, "NaN"...)
	case math.IsInf(f, 1):
		return append(buf, "Infinity"...)
	case math.IsInf(f, -1):
		return append(buf, "-Infinity"...)
	case f == 0:
		if math.Signbit(f) {
			return append(buf, "-0"...)
		}
		return append(buf, '0')
	}
	// The decimal exponent of the shortest representation decides the
	// notation; 'e' with precision -1 yields exactly those digits.
	var tmp [32]byte
	sci := strconv.AppendFloat(tmp[:0], f, 'e', -1, 64)
	i := bytes.IndexByte(sci, 'e')
	exp, err := strconv.Atoi(string(sci[i+1:]))
	if err != nil {
		// strconv always writes a valid exponent; fall back to it verbatim.
		return append(buf, sci...)
	}
	if exp >= -4 && exp < 15 {
		return strconv.AppendFloat(buf, f, 'f', -1, 64)
	}
	return append(buf, sci...)
}

// decodeParam decodes one Bind parameter of type oid sent in format into
// one of the engine's Go values (nil, int64, float64, string, bool,
// time.Time). n is the 1-based parameter number for error messages.
func (e *encoder) decodeParam(n int, oid uint32, format int16, src []byte) (any, error) {
	if src == nil {
		return nil, nil
	}
	if format != formatText && format != formatBinary {
		return nil, sqlerr.New(pgerrcode.InvalidParameterValue, "unsupported format code: %d", format)
	}
	if format == formatBinary && len(src) < binarySize(oid) {
		// PostgreSQL's receive functions run out of message here.
		return nil, sqlerr.New(pgerrcode.ProtocolViolation, "insufficient data left in message")
	}
	// The messages are PostgreSQL's; the decoder's own error adds nothing
	// a client can act on.
	bad := func(error) error {
		if format == formatText {
			return sqlerr.New(pgerrcode.InvalidTextRepresentation,
				"invalid input syntax for type %s: %q", sqltypes.FormatType(oid), string(src))
		}
		return sqlerr.New(pgerrcode.InvalidBinaryRepresentation,
			"incorrect binary data format in bind parameter %d", n)
	}
	switch oid {
	case sqltypes.OIDInt2, sqltypes.OIDInt4, sqltypes.OIDInt8:
		if format == formatText {
			v, err := strconv.ParseInt(strings.TrimSpace(string(src)), 10, 64)
			if err != nil {
				return nil, bad(err)
			}
			return v, nil
		}
		var v int64
		if err := e.m.Scan(oid, format, src, &v); err != nil {
			return nil, bad(err)
		}
		return v, nil
	case sqltypes.OIDFloat4, sqltypes.OIDFloat8, sqltypes.OIDNumeric:
		if format == formatText {
			v, err := parseFloat8(string(src))
			if err != nil {
				return nil, bad(err)
			}
			return v, nil
		}
		var v float64
		if err := e.m.Scan(oid, format, src, &v); err != nil {
			return nil, bad(err)
		}
		return v, nil
	case sqltypes.OIDBool:
		if format == formatText {
			v, ok := parseBool(string(src))
			if !ok {
				return nil, bad(fmt.Errorf("not a boolean"))
			}
			return v, nil
		}
		var v bool
		if err := e.m.Scan(oid, format, src, &v); err != nil {
			return nil, bad(err)
		}
		return v, nil
	case sqltypes.OIDTimestamp, sqltypes.OIDTimestampTZ, sqltypes.OIDDate:
		var v time.Time
		if err := e.m.Scan(oid, format, src, &v); err != nil {
			if format == formatBinary {
				return nil, bad(err)
			}
			// pgtype reads only PostgreSQL's own output format; clients
			// also send ISO 8601 ('T', 'Z') and zones on TIMESTAMP values.
			t, ok := parseTimestamp(string(src), oid == sqltypes.OIDTimestampTZ)
			if !ok {
				return nil, bad(err)
			}
			v = t
		}
		if oid == sqltypes.OIDTimestampTZ {
			v = v.UTC()
		}
		return v, nil
	case sqltypes.OIDText, sqltypes.OIDVarchar, sqltypes.OIDBPChar, sqltypes.OIDName, sqltypes.OIDJSON, sqltypes.OIDUnknown, 0:
		// Text types have the same bytes in both formats; an unspecified
		// or unknown type is taken as text, as PostgreSQL does for an
		// untyped literal.
		return string(src), nil
	}
	if format == formatText {
		return string(src), nil
	}
	var s string
	if err := e.m.Scan(oid, format, src, &s); err != nil {
		return nil, sqlerr.New(pgerrcode.FeatureNotSupported,
			"binary format for parameter $%d of type oid %d is not supported", n, oid)
	}
	return s, nil
}

// parseFloat8 reads float8 text as PostgreSQL does: surrounding space is
// allowed, and Infinity, -Infinity and NaN in any case.
func parseFloat8(s string) (float64, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "infinity", "+infinity", "inf", "+inf":
		return math.Inf(1), nil
	case "-infinity", "-inf":
		return math.Inf(-1), nil
	case "nan":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}

// parseBool reads boolean text as PostgreSQL does (t, true, yes, on, 1
// and their opposites, any case, surrounding space allowed).
func parseBool(s string) (v, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "t", "true", "y", "yes", "on", "1":
		return true, true
	case "f", "false", "n", "no", "off", "0":
		return false, true
	}
	return false, false
}

// timestampLayouts are the timestamp texts parseTimestamp accepts beyond
// pgtype's, zone-less first.
var timestampLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02T15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999Z07:00:00",
}

// parseTimestamp reads timestamp text in ISO 8601 or PostgreSQL style. As
// in PostgreSQL, a TIMESTAMP ignores a zone (it keeps the wall clock) and a
// TIMESTAMPTZ without a zone is in the session's zone, UTC.
func parseTimestamp(s string, tz bool) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range timestampLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if !tz {
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
		}
		return t, true
	}
	return time.Time{}, false
}
