package sqltypes

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

func TestNames(t *testing.T) {
	cases := []struct {
		in   string
		want arrow.DataType
	}{
		{"bigint", Int64}, {"INT", Int64}, {"smallint", Int64},
		{"double precision", Float64}, {"DOUBLE  PRECISION", Float64}, {"numeric(10,2)", Float64}, {"real", Float64},
		{"varchar", String}, {"VARCHAR(20)", String}, {"text", String}, {"character varying", String},
		{"boolean", Bool}, {"bool", Bool},
		{"timestamp", Timestamp}, {"timestamp without time zone", Timestamp},
		{"timestamptz", TimestampTZ}, {"TIMESTAMP WITH TIME ZONE", TimestampTZ},
	}
	for _, tc := range cases {
		got, err := FromName(tc.in)
		if err != nil || !arrow.TypeEqual(got, tc.want) {
			t.Errorf("FromName(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		// The canonical name reads back as the same type.
		if back, err := FromName(Name(got)); err != nil || !arrow.TypeEqual(back, got) {
			t.Errorf("FromName(Name(%v)) = %v, %v", got, back, err)
		}
	}
	for _, bad := range []string{"jsonb", "", "int[]", "interval"} {
		if _, err := FromName(bad); err == nil {
			t.Errorf("FromName(%q) succeeded", bad)
		}
	}
}

func TestOIDs(t *testing.T) {
	for _, typ := range []arrow.DataType{Int64, Float64, String, Bool, Timestamp, TimestampTZ} {
		back, ok := FromOID(OID(typ))
		if !ok || !arrow.TypeEqual(back, typ) {
			t.Errorf("FromOID(OID(%v)) = %v, %v", typ, back, ok)
		}
	}
	for oid, want := range map[uint32]arrow.DataType{OIDInt2: Int64, OIDInt4: Int64, OIDFloat4: Float64, OIDNumeric: Float64, OIDVarchar: String, OIDBPChar: String} {
		if got, ok := FromOID(oid); !ok || !arrow.TypeEqual(got, want) {
			t.Errorf("FromOID(%d) = %v, %v; want %v", oid, got, ok, want)
		}
	}
	for _, oid := range []uint32{0, OIDUnknown, OIDJSON, OIDDate} {
		if _, ok := FromOID(oid); ok {
			t.Errorf("FromOID(%d) is ok; the engine does not read that type", oid)
		}
	}
	if OID(Null) != OIDUnknown {
		t.Errorf("OID(Null) = %d", OID(Null))
	}
}

// TestFormatType: every engine type has PostgreSQL's format_type name.
func TestFormatType(t *testing.T) {
	for typ, want := range map[arrow.DataType]string{
		Int64: "bigint", Float64: "double precision", String: "text", Bool: "boolean",
		Timestamp: "timestamp without time zone", TimestampTZ: "timestamp with time zone",
	} {
		if got := FormatType(OID(typ)); got != want {
			t.Errorf("FormatType(OID(%s)) = %q, want %q", typ, got, want)
		}
	}
	if got := FormatType(99999); got != "oid 99999" {
		t.Errorf("FormatType of an unknown oid = %q", got)
	}
}
