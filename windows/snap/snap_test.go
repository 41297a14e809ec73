package snap

import (
	"math"
	"slices"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	w := NewWriter(nil)
	w.Section("head")
	w.Uint(0)
	w.Uint(math.MaxUint64)
	w.Int(math.MinInt64)
	w.Int(-1)
	w.Bool(true)
	w.Bool(false)
	w.Float(math.Inf(-1))
	w.Float(math.Copysign(0, -1))
	w.Blob(nil)
	w.Blob([]byte{0, 1, 2})
	w.String("sessions ✓")
	ints := []int64{0, 1, -1, math.MaxInt64, math.MinInt64}
	w.Ints(ints)
	for n := range 18 {
		bs := make([]bool, n)
		for i := range bs {
			bs[i] = i%3 == 0
		}
		w.Bools(bs)
	}
	r := NewReader(w.Bytes())
	if err := r.Section("head"); err != nil {
		t.Fatal(err)
	}
	check := func(what string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s did not round-trip (err %v)", what, r.Err())
		}
	}
	check("uint 0", r.Uint() == 0)
	check("uint max", r.Uint() == math.MaxUint64)
	check("int min", r.Int() == math.MinInt64)
	check("int -1", r.Int() == -1)
	check("true", r.Bool())
	check("false", !r.Bool())
	check("-inf", math.IsInf(r.Float(), -1))
	check("-0", math.Signbit(r.Float()))
	check("empty blob", len(r.Blob()) == 0)
	check("blob", slices.Equal(r.Blob(), []byte{0, 1, 2}))
	check("string", r.String() == "sessions ✓")
	check("ints", slices.Equal(r.Ints(), ints))
	for n := range 18 {
		bs := r.Bools()
		ok := len(bs) == n
		for i := range bs {
			ok = ok && bs[i] == (i%3 == 0)
		}
		check("bools", ok)
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptInputFails(t *testing.T) {
	w := NewWriter(nil)
	w.Section("a")
	w.Ints([]int64{1, 2, 3})
	good := w.Bytes()
	for cut := range len(good) {
		r := NewReader(good[:cut])
		r.Section("a")
		r.Ints()
		if r.Done() == nil {
			t.Errorf("truncated at %d: no error", cut)
		}
	}
	r := NewReader(good)
	if r.Section("b") == nil {
		t.Error("wrong section accepted")
	}
	// A huge count must fail before allocating.
	w = NewWriter(nil)
	w.Uint(1 << 40)
	r = NewReader(w.Bytes())
	if r.Ints() != nil || r.Err() == nil {
		t.Error("huge count accepted")
	}
	r = NewReader(w.Bytes())
	if r.Bools() != nil || r.Err() == nil {
		t.Error("huge bitmap accepted")
	}
	if r := NewReader(append(good, 0)); r.Section("a") != nil || r.Ints() == nil || r.Done() == nil {
		t.Error("trailing byte not reported")
	}
}

// FuzzReader reads arbitrary bytes as a mixed sequence of values: it must
// never panic or allocate beyond the input's size.
func FuzzReader(f *testing.F) {
	w := NewWriter(nil)
	w.Section("x")
	w.Ints([]int64{5, -5})
	w.Bools([]bool{true, false, true})
	w.Blob([]byte("abc"))
	w.Float(1.5)
	f.Add(w.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		for r.Err() == nil && r.Remaining() > 0 {
			switch b[len(b)-r.Remaining()] % 7 {
			case 0:
				r.Ints()
			case 1:
				r.Bools()
			case 2:
				r.Blob()
			case 3:
				r.Float()
			case 4:
				_ = r.String()
			case 5:
				r.Bool()
			default:
				r.Int()
			}
		}
		if r.Remaining() < 0 {
			t.Fatal("read past the end")
		}
	})
}
