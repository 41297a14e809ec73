package source

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// sameAsSlow decodes payloads (sequences 1, 2, ...) with a Decoder and
// with one that skips scan (slowOnly: the fastjson path, which was the
// whole decoder before scan), starting a batch every perBatch rows (0:
// one batch), and fails unless both give the same rows, rejects, reasons
// and batches.
func sameAsSlow(t testing.TB, cols []Column, timeCol int, payloads [][]byte, perBatch int) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	fast, err := NewDecoder(mem, cols, timeCol)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Release()
	slow, err := NewDecoder(mem, cols, timeCol)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Release()
	slow.slowOnly = true

	var fastRecs, slowRecs []arrow.RecordBatch
	defer func() {
		for _, r := range append(fastRecs, slowRecs...) {
			r.Release()
		}
	}()
	flush := func() {
		fastRecs = append(fastRecs, fast.NewBatch())
		slowRecs = append(slowRecs, slow.NewBatch())
	}
	for i, p := range payloads {
		seq := uint64(i + 1)
		fr, fok := fast.Append(seq, p)
		sr, sok := slow.Append(seq, p)
		if fok != sok || fr != sr {
			t.Errorf("message %q: ok=%v %q, parser alone: ok=%v %q", p, fok, fr, sok, sr)
		}
		if fast.Len() != slow.Len() {
			t.Fatalf("after message %q: Len() = %d, parser alone %d", p, fast.Len(), slow.Len())
		}
		if perBatch > 0 && fast.Len() >= perBatch {
			flush()
		}
	}
	flush()
	for b := range fastRecs {
		f, s := fastRecs[b], slowRecs[b]
		if !array.RecordEqual(f, s) {
			t.Errorf("batch %d differs from the parser's:\n%v\nparser:\n%v", b, f, s)
			continue
		}
		fr, sr := batchRows(f), batchRows(s)
		for r := range fr {
			if g, w := renderRow(f.Schema(), fr[r]), renderRow(s.Schema(), sr[r]); g != w {
				t.Errorf("batch %d row %d:\n got %s\nparser %s", b, r, g, w)
			}
		}
		for c, col := range f.Columns() {
			nulls := 0
			for r := range col.Len() {
				if col.IsNull(r) {
					nulls++
				}
			}
			if nulls != col.NullN() || col.NullN() != s.Column(c).NullN() {
				t.Errorf("batch %d column %d: %d null bits, NullN %d, parser's NullN %d",
					b, c, nulls, col.NullN(), s.Column(c).NullN())
			}
		}
	}
}

// TestScanTakesFastPath lists messages scan must accept by itself, so
// that their shapes stay fast, and checks their rows against the parser.
func TestScanTakesFastPath(t *testing.T) {
	for _, p := range []string{
		`{"i":1,"f":2.5,"s":"x","b":true,"ts":"2024-01-02T03:04:05.678Z","tz":1704164645678,"UserId":"u"}`,
		`{"ts":"2024-01-02T03:04:05Z"}`,
		`{"ts":"2024-01-02 03:04:05"}`,
		`{"ts":"2024-01-02t03:04:05.123456789z"}`,
		`{"ts":"2024-01-02T03:04:05.1+05:30"}`,
		`{"ts":-62167219200000,"tz":253402300799999}`,
		` { "ts" : 1 , "i" : -9223372036854775808 , "f" : -0 } ` + "\n\t\r",
		`{"ts":1,"i":9223372036854775807,"f":1e308,"b":false}`,
		`{"ts":1,"f":-1.25e-3,"s":"a\"b\\c\/d\b\f\n\r\t","UserId":"\u00e9\ud83d\ude00\u0041"}`,
		`{"ts":1,"s":"é ü 日本 😀","UserId":""}`,
		`{"ts":1,"i":null,"f":null,"s":null,"b":null,"tz":null,"UserId":null}`,
		`{"TS":1,"I":2,"userid":"fold","USERID":"second"}`,
		`{"userid":"fold","UserId":"exact","UserId":"dup","ts":1}`,
		`{"i":null,"I":2,"ts":1}`,
		`{"ts":1,"x":{"a":[1,2.5e+3,-0.0,"s\"",true,false,null,{}],"b":[]},"y":[[[[]]]],"z":"\u00e9"}`,
		`{"ts":1,"":0,"i ":1,"é":2}`,
		`{"ts":1,"ts":"not checked, the first exact match wins"}`,
		`{"Ts":"2024-01-02T03:04:05Z","tS":"also not checked"}`,
	} {
		d, err := NewDecoder(memory.NewGoAllocator(), fuzzCols, fuzzTimeCol)
		if err != nil {
			t.Fatal(err)
		}
		if !d.scan([]byte(p)) {
			t.Errorf("scan gave up on %s", p)
		}
		d.Release()
		sameAsSlow(t, fuzzCols, fuzzTimeCol, [][]byte{[]byte(p)}, 0)
	}
}

// TestScanRandom decodes random messages, most of them rows, with scan and
// with the parser alone, in batches of several sizes, and against the
// reference decoder.
func TestScanRandom(t *testing.T) {
	for seed := range uint64(3) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var payloads [][]byte
		for range 1500 {
			payloads = append(payloads, randomMessage(rng))
		}
		for _, n := range []int{1, 7, 0} {
			sameAsSlow(t, fuzzCols, fuzzTimeCol, payloads, n)
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		dec, err := NewDecoder(mem, fuzzCols, fuzzTimeCol)
		if err != nil {
			t.Fatal(err)
		}
		out := decodeAndCompare(t, dec, fuzzCols, fuzzTimeCol, payloads)
		dec.Release()
		mem.AssertSize(t, 0)
		rows := strings.Count(out, "row ")
		if rows < len(payloads)/3 || rows > len(payloads)*9/10 {
			t.Errorf("seed %d: %d of %d messages are rows; the generator should mix rows and rejects", seed, rows, len(payloads))
		}
	}
}

// randomMessage returns a message for fuzzCols: mostly valid JSON objects
// with fields in random order, case and spacing, values of the right and
// the wrong types, nulls, duplicates, unknown fields; sometimes damaged.
func randomMessage(rng *rand.Rand) []byte {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	ws := func() string {
		if rng.IntN(4) > 0 {
			return ""
		}
		return pick(" ", "\n", "\t", "\r", "  ")
	}
	// Per column, values that convert, then (after "|") values that do
	// not or are not JSON.
	values := map[string][]string{
		"i": {"0", "-0", "7", "123", "-45", "9223372036854775807", "-9223372036854775808", "1234567890123456789",
			"|", "9223372036854775808", "12345678901234567890", "1.5", "1e3", "01", "-", `"1"`},
		"f": {"0", "-0.0", "2.5", "-1.25e-3", "1e308", "2e-400", "12", "1E+2",
			"|", "1e309", ".5", "1.", `"x"`, "true"},
		"s": {`""`, `"x"`, `"tv"`, `"a\"b"`, `"\u00e9"`, `"é"`, `"\ud83d\ude00"`, `"t\tab"`,
			"|", `"\ud800"`, `"\udc00x"`, "\"raw\ttab\"", "\"bad\xffutf8\"", `"\x"`, `"\u12"`, "1", "[]", "{}"},
		"b": {"true", "false", "|", "1", `"true"`, "tru"},
		"ts": {`"2024-01-02T03:04:05.678Z"`, `"2024-01-02T03:04:05Z"`, `"2024-01-02 03:04:05"`,
			`"2024-02-29T23:59:59.999999999+05:30"`, `"2024-01-0\u0032T03:04:05Z"`, `"9999-12-31T23:59:59.999Z"`,
			"1704164645678", "0", "-62167219200000",
			"|", `"2023-02-29T00:00:00Z"`, `"2024-01-02T24:00:00Z"`, `"2024-01-02T03:04:05.Z"`, `"2024-01-02T03:04:05"x`,
			"-62167219200001", "253402300800000", "1.5", "true", `"x"`},
		"x": {`{"a":[1,{"b":null}],"c":"\u00e9"}`, "[ 1 , 2 ]", `"unknown"`, "-1.5e+7", "[[[[[[[[]]]]]]]]",
			"|", "[01]", `{"a" 1}`, "nan", "[1,]"},
	}
	values["UserId"], values["tz"] = values["s"], values["ts"]
	val := func(col string) string {
		if rng.IntN(12) == 0 {
			return "null"
		}
		vs := values[col]
		bad := slices.Index(vs, "|")
		if rng.IntN(25) == 0 {
			return pick(vs[bad+1:]...)
		}
		return pick(vs[:bad]...)
	}
	names := map[string][]string{
		"i": {"i", "I"}, "f": {"f", "F"}, "s": {"s", "S"}, "b": {"b", "B"},
		"ts": {"ts", "TS", "Ts"}, "tz": {"tz", "TZ"}, "UserId": {"UserId", "userid", "USERID"},
		"x": {"x", "user", "", "\\u0074s", "é"},
	}
	cols := []string{"i", "f", "s", "b", "ts", "tz", "UserId", "x"}
	rng.Shuffle(len(cols), func(i, j int) { cols[i], cols[j] = cols[j], cols[i] })
	var b bytes.Buffer
	b.WriteString(ws() + "{")
	n := 0
	for _, c := range cols {
		for range rng.IntN(3) { // absent, once, or twice
			if c == "ts" && rng.IntN(30) > 0 && n > 0 {
				continue
			}
			if n > 0 {
				b.WriteString(ws() + ",")
			}
			fmt.Fprintf(&b, "%s\"%s\"%s:%s%s", ws(), pick(names[c]...), ws(), ws(), val(c))
			n++
		}
	}
	if !strings.Contains(b.String(), `"ts"`) && rng.IntN(10) > 0 {
		if n > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"ts":%s`, pick(values["ts"][:3]...))
	}
	b.WriteString(ws() + "}" + ws())
	msg := b.Bytes()
	switch rng.IntN(40) {
	case 0:
		return msg[:rng.IntN(len(msg))]
	case 1:
		return append(msg, pick("x", "}", ",", "{}")...)
	case 2:
		return []byte(pick(`[1]`, `"s"`, `null`, "", " ", `{"ts":1`))
	}
	return msg
}

// checkScanTimestamp checks scanTimestamp on s followed by a quote: when
// it answers, it answers what parseTimestamp says of the string up to the
// quote, and it answers for every timestamp parseTimestamp accepts that
// has no zone offset.
func checkScanTimestamp(t *testing.T, s string) {
	t.Helper()
	b := []byte(s + `"`)
	for _, prev := range []string{"", s, "2024-01-02T03:04:05Z"} {
		var c dateCache
		if prev != "" {
			parseTimestamp([]byte(prev), &c)
		}
		ms, end := scanTimestamp(b, 0, &c)
		q := bytes.IndexByte(b, '"')
		want, wantOK := parseTimestamp(b[:q], nil)
		switch {
		case end >= 0 && (end != q+1 || !wantOK || ms != want):
			t.Errorf("scanTimestamp(%q) = %d, end %d; parseTimestamp(%q) = %d %v", b, ms, end, b[:q], want, wantOK)
		case end < 0 && wantOK && q == len(s) && !strings.ContainsAny(s[min(len(s), 19):], "+-"):
			t.Errorf("scanTimestamp(%q) gave up; parseTimestamp = %d", b, want)
		}
	}
}

// FuzzScanTimestamp checks scanTimestamp against parseTimestamp.
func FuzzScanTimestamp(f *testing.F) {
	for _, s := range []string{"2024-01-02T03:04:05.678Z", "2024-01-02 03:04:05", "2024-02-29t23:59:59.123456789z",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "2024-01-02T03:04:05+01:00", "2024-13-02T03:04:05Z"} {
		f.Add(s)
	}
	f.Fuzz(checkScanTimestamp)
}

// TestScanInt checks scanInt, eight bytes at a time or one, against
// strconv.ParseInt, for numbers of every length, signs, leading zeros,
// what follows them, and where the payload ends.
func TestScanInt(t *testing.T) {
	ref := func(s string) (int64, int) {
		j := 0
		if j < len(s) && s[j] == '-' {
			j++
		}
		k := j
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k == j || k-j > 1 && s[j] == '0' || k < len(s) && strings.ContainsRune(".eE", rune(s[k])) {
			return 0, -1
		}
		n, err := strconv.ParseInt(s[:k], 10, 64)
		if err != nil {
			return 0, -1
		}
		return n, k
	}
	check := func(s string) {
		t.Helper()
		for _, pre := range []string{"", `{"bytes":`} {
			n, end := scanInt([]byte(pre+s), len(pre))
			wn, wend := ref(s)
			if wend >= 0 {
				wend += len(pre)
			}
			if n != wn && end >= 0 || end != wend {
				t.Fatalf("scanInt(%q) = %d, %d; want %d, %d", s, n, end, wn, wend)
			}
		}
	}
	for _, s := range []string{"", "-", "0", "-0", "00", "01", "-01", "7", "12345678", "123456789",
		"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
		"18446744073709551615", "18446744073709551616", "99999999999999999999", "1000000000000000000",
		"0.5", "1e3", "1E3", "12345678.5", "1234567890123456e1", "12x", "1-2", "12345678}", "1704164645678,"} {
		check(s)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	digits := "0123456789"
	for range 20000 {
		var b strings.Builder
		if rng.IntN(3) == 0 {
			b.WriteByte('-')
		}
		for j := range 1 + rng.IntN(22) {
			if j == 0 && rng.IntN(4) > 0 {
				b.WriteByte(digits[1+rng.IntN(9)])
				continue
			}
			b.WriteByte(digits[rng.IntN(10)])
		}
		b.WriteString([]string{"", "}", ",", " ", ".5", "e1", "x", "0", "/", ":", "\xff", `"}`}[rng.IntN(12)])
		check(b.String())
	}
}

// TestPlainEnd checks plainEnd, eight bytes at a time, against a byte
// loop, with every kind of special byte at every position.
func TestPlainEnd(t *testing.T) {
	slow := func(b []byte, i int) int {
		for i < len(b) && !strSpecial[b[i]] {
			i++
		}
		return i
	}
	rng := rand.New(rand.NewPCG(5, 6))
	plain := []byte("abc XYZ 019 !#$%&'()*+,-./:;<=>?@[]^_`{|}~\x7f")
	special := []byte{'"', '\\', 0, 0x1f, '\n', 0x80, 0xc3, 0xff}
	for range 20000 {
		b := make([]byte, rng.IntN(40))
		for j := range b {
			b[j] = plain[rng.IntN(len(plain))]
			if rng.IntN(12) == 0 {
				b[j] = special[rng.IntN(len(special))]
			}
		}
		i := rng.IntN(len(b) + 1)
		if got, want := plainEnd(b, i), slow(b, i); got != want {
			t.Fatalf("plainEnd(%q, %d) = %d, want %d", b, i, got, want)
		}
	}
}

// FuzzScan is FuzzDecode without the reference decoder, so it runs many
// times faster: between two good messages, the payload must give the
// same outcome, reason and rows with scan as with the parser alone.
func FuzzScan(f *testing.F) {
	for _, s := range []string{
		`{"i":1,"f":2.5,"s":"x","b":true,"ts":"2024-01-02T03:04:05.678Z","tz":1704164645678,"UserId":"u"}`,
		` { "ts" : "2024-01-02t03:04:05.123456789z" , "i" : 1234567890123456789 , "b" : false } ` + "\n",
		`{"ts":"2024-01-02 03:04:05","s":"a\"b\\c\/\b\f\n\r\t\u00e9\ud83d\ude00","UserId":"é 😀"}`,
		`{"userid":"fold","UserId":"exact","UserId":"dup","ts":1,"i":null,"I":2}`,
		`{"ts":1,"x":{"a":[1,2.5e+3,-0.0,"s\"",true,false,null,{}],"b":[]},"y":[[[[]]]],"":0}`,
		`{"ts":"2024-02-29T23:59:59.999+05:30","f":1e309}`, `{"ts":1,"s":"\ud800"}`, `{"ts":1,"i":01}`,
	} {
		f.Add([]byte(s))
	}
	good1 := []byte(`{"i":1,"ts":"2024-01-02T03:04:05Z","s":"first","b":true}`)
	good2 := []byte(`{"i":3,"ts":1704164645000,"s":"last","UserId":null}`)
	f.Fuzz(func(t *testing.T, payload []byte) {
		sameAsSlow(t, fuzzCols, fuzzTimeCol, [][]byte{good1, payload, good2, payload}, 0)
	})
}
