package server

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"

	"github.com/sessionsql/sessionsql/sql/sqlerr"
	"github.com/sessionsql/sessionsql/sql/sqltypes"
)

// The expected texts are what PostgreSQL 15 prints for the same values
// (psql -c "select v::float8").
func TestAppendFloat8(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{1.5, "1.5"},
		{1e15, "1e+15"},
		{1e14, "100000000000000"},
		{123456789012345.6, "123456789012345.6"},
		{1e-4, "0.0001"},
		{1e-5, "1e-05"},
		{0.1, "0.1"},
		{1.0 / 3, "0.3333333333333333"},
		{0, "0"},
		{math.Copysign(0, -1), "-0"},
		{1e300, "1e+300"},
		{2.5e-300, "2.5e-300"},
		{5e-324, "5e-324"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{100, "100"},
		{1000000, "1000000"},
		{123456789.125, "123456789.125"},
		{0.000123, "0.000123"},
		{999999999999999, "999999999999999"},
		{9999999999999998, "9.999999999999998e+15"},
		{1234567890123456789, "1.2345678901234568e+18"},
		{-1.5, "-1.5"},
		{math.Inf(1), "Infinity"},
		{math.Inf(-1), "-Infinity"},
		{math.NaN(), "NaN"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := string(appendFloat8(nil, tc.in)); got != tc.want {
				t.Errorf("appendFloat8(%v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestAppendValueText(t *testing.T) {
	enc := newEncoder()
	tests := []struct {
		name string
		oid  uint32
		in   any
		want string
	}{
		{"int8", sqltypes.OIDInt8, int64(-42), "-42"},
		{"bool true", sqltypes.OIDBool, true, "t"},
		{"bool false", sqltypes.OIDBool, false, "f"},
		{"text", sqltypes.OIDText, "héllo", "héllo"},
		{"timestamp ms", sqltypes.OIDTimestamp, time.Date(2024, 1, 2, 3, 4, 5, 678e6, time.UTC), "2024-01-02 03:04:05.678"},
		{"timestamp whole", sqltypes.OIDTimestamp, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "2024-01-02 03:04:05"},
		{"timestamptz ms", sqltypes.OIDTimestampTZ, time.Date(2024, 1, 2, 3, 4, 5, 678e6, time.UTC), "2024-01-02 03:04:05.678+00"},
		{"timestamptz other zone", sqltypes.OIDTimestampTZ, time.Date(2024, 1, 2, 5, 4, 5, 0, time.FixedZone("x", 2*3600)), "2024-01-02 03:04:05+00"},
		{"timestamptz micro", sqltypes.OIDTimestampTZ, time.Date(2000, 1, 1, 0, 0, 0, 1000, time.UTC), "2000-01-01 00:00:00.000001+00"},
		{"timestamptz BC", sqltypes.OIDTimestampTZ, time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), "0001-01-01 00:00:00+00 BC"},
		{"timestamp year 1", sqltypes.OIDTimestamp, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "0001-01-01 00:00:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := enc.appendValue([]byte{}, tc.oid, formatText, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if got, err := enc.appendValue([]byte{}, sqltypes.OIDText, formatText, ""); err != nil || got == nil || len(got) != 0 {
		t.Errorf("empty string: got %q (nil %v), %v; want an empty non-NULL value", got, got == nil, err)
	}
	if got, err := enc.appendValue([]byte{}, sqltypes.OIDInt8, formatText, nil); err != nil || got != nil {
		t.Errorf("nil: got %q, %v; want NULL", got, err)
	}
	if _, err := enc.appendValue(nil, sqltypes.OIDInt8, formatText, struct{}{}); err == nil {
		t.Error("struct{}: want an error")
	}
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func TestDecodeParam(t *testing.T) {
	enc := newEncoder()
	ts := time.Date(2024, 1, 2, 3, 4, 5, 678e6, time.UTC)
	// Microseconds from 2000-01-01 to ts, PostgreSQL's binary timestamp.
	tsBinary := be64(uint64(ts.Sub(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).Microseconds()))
	tests := []struct {
		name   string
		oid    uint32
		format int16
		in     []byte
		want   any
		code   string // SQLSTATE of the expected error
	}{
		{"null", sqltypes.OIDInt8, formatText, nil, nil, ""},
		{"int8 text", sqltypes.OIDInt8, formatText, []byte(" 42 "), int64(42), ""},
		{"int8 binary", sqltypes.OIDInt8, formatBinary, be64(7), int64(7), ""},
		{"int4 binary", sqltypes.OIDInt4, formatBinary, []byte{0, 0, 1, 0}, int64(256), ""},
		{"int2 binary", sqltypes.OIDInt2, formatBinary, []byte{0xff, 0xfe}, int64(-2), ""},
		{"int8 bad text", sqltypes.OIDInt8, formatText, []byte("abc"), nil, pgerrcode.InvalidTextRepresentation},
		{"int8 short binary", sqltypes.OIDInt8, formatBinary, []byte{1, 2}, nil, pgerrcode.ProtocolViolation},
		{"int8 long binary", sqltypes.OIDInt8, formatBinary, make([]byte, 9), nil, pgerrcode.InvalidBinaryRepresentation},
		{"float8 text", sqltypes.OIDFloat8, formatText, []byte("1.5"), 1.5, ""},
		{"float8 infinity", sqltypes.OIDFloat8, formatText, []byte("-Infinity"), math.Inf(-1), ""},
		{"float8 binary", sqltypes.OIDFloat8, formatBinary, be64(math.Float64bits(2.25)), 2.25, ""},
		{"float4 binary", sqltypes.OIDFloat4, formatBinary, binary.BigEndian.AppendUint32(nil, math.Float32bits(0.5)), 0.5, ""},
		{"numeric text", sqltypes.OIDNumeric, formatText, []byte("12.75"), 12.75, ""},
		{"numeric binary", sqltypes.OIDNumeric, formatBinary, []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 12}, 12.0, ""},
		{"bool text", sqltypes.OIDBool, formatText, []byte("true"), true, ""},
		{"bool text f", sqltypes.OIDBool, formatText, []byte("f"), false, ""},
		{"bool binary", sqltypes.OIDBool, formatBinary, []byte{1}, true, ""},
		{"bool bad", sqltypes.OIDBool, formatText, []byte("maybe"), nil, pgerrcode.InvalidTextRepresentation},
		{"text", sqltypes.OIDText, formatText, []byte("héllo"), "héllo", ""},
		{"text empty", sqltypes.OIDText, formatText, []byte{}, "", ""},
		{"varchar binary", sqltypes.OIDVarchar, formatBinary, []byte("x"), "x", ""},
		{"unknown", sqltypes.OIDUnknown, formatText, []byte("u"), "u", ""},
		{"unspecified", 0, formatText, []byte("42"), "42", ""},
		{"timestamp text", sqltypes.OIDTimestamp, formatText, []byte("2024-01-02 03:04:05.678"), ts, ""},
		{"timestamp binary", sqltypes.OIDTimestamp, formatBinary, tsBinary, ts, ""},
		{"timestamptz text", sqltypes.OIDTimestampTZ, formatText, []byte("2024-01-02 05:04:05.678+02"), ts, ""},
		{"timestamptz binary", sqltypes.OIDTimestampTZ, formatBinary, tsBinary, ts, ""},
		{"timestamp iso zone", sqltypes.OIDTimestamp, formatText, []byte("2024-01-02T03:04:05.678+05:00"), ts, ""},
		{"timestamp Z", sqltypes.OIDTimestamp, formatText, []byte("2024-01-02 03:04:05.678Z"), ts, ""},
		{"timestamptz Z", sqltypes.OIDTimestampTZ, formatText, []byte("2024-01-02 03:04:05.678Z"), ts, ""},
		{"timestamptz no zone", sqltypes.OIDTimestampTZ, formatText, []byte("2024-01-02T03:04:05.678"), ts, ""},
		{"timestamp bad", sqltypes.OIDTimestamp, formatText, []byte("yesterday-ish"), nil, pgerrcode.InvalidTextRepresentation},
		{"other type text", 2950 /* uuid */, formatText, []byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", ""},
		{"bad format", sqltypes.OIDInt8, 7, []byte("1"), nil, pgerrcode.InvalidParameterValue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := enc.decodeParam(1, tc.oid, tc.format, tc.in)
			if tc.code != "" {
				if code := sqlerr.Code(err); err == nil || code != tc.code {
					t.Fatalf("got %v, %v; want an error with code %s", got, err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if gt, ok := got.(time.Time); ok {
				if !gt.Equal(tc.want.(time.Time)) || gt.Location() != time.UTC {
					t.Errorf("got %v, want %v (UTC)", gt, tc.want)
				}
				return
			}
			if got != tc.want {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestResultFormats(t *testing.T) {
	tests := []struct {
		name  string
		codes []int16
		ncols int
		want  []int16
		code  string
	}{
		{"none", nil, 3, []int16{0, 0, 0}, ""},
		{"one for all", []int16{1}, 2, []int16{1, 1}, ""},
		{"each", []int16{1, 0}, 2, []int16{1, 0}, ""},
		{"wrong count", []int16{1, 0}, 3, nil, pgerrcode.ProtocolViolation},
		{"bad code", []int16{2}, 1, nil, pgerrcode.InvalidParameterValue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resultFormats(tc.codes, tc.ncols)
			if tc.code != "" {
				if sqlerr.Code(err) != tc.code {
					t.Fatalf("got %v, %v; want code %s", got, err, tc.code)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestEndsTransaction(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"ROLLBACK", true},
		{"  rollback;", true},
		{"-- c\n/* x /* nested */ y */ COMMIT", true},
		{"end", true},
		{"abort", true},
		{"SELECT 1", false},
		{"", false},
		{"/* unterminated", false},
		{"-- only a comment", false},
		{"ROLLBACKS", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := endsTransaction(tc.in); got != tc.want {
				t.Errorf("endsTransaction(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
