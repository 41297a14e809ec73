package sql

import (
	"reflect"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []Piece
	}{
		{name: "empty", in: "", want: nil},
		{name: "only semicolons and spaces", in: " ;; ;\n", want: nil},
		{name: "only comments", in: "-- hello\n; /* there */ ;", want: nil},
		{name: "one", in: "SELECT 1", want: []Piece{{"SELECT 1", 0}}},
		{name: "one with semicolon", in: "SELECT 1;", want: []Piece{{"SELECT 1", 0}}},
		{name: "two", in: "SELECT 1; SELECT 2;", want: []Piece{{"SELECT 1", 0}, {"SELECT 2", 10}}},
		{name: "spaces trimmed", in: "  SELECT 1 ;\n\tSELECT 2  ", want: []Piece{{"SELECT 1", 2}, {"SELECT 2", 14}}},
		{name: "empty piece dropped", in: "SELECT 1;;SELECT 2", want: []Piece{{"SELECT 1", 0}, {"SELECT 2", 10}}},
		{name: "string", in: "SELECT ';'; SELECT 2", want: []Piece{{"SELECT ';'", 0}, {"SELECT 2", 12}}},
		{name: "doubled quote", in: "SELECT 'it''s;'; SELECT 2", want: []Piece{{"SELECT 'it''s;'", 0}, {"SELECT 2", 17}}},
		{name: "backslash is not an escape", in: `SELECT 'a\'; SELECT 2`, want: []Piece{{`SELECT 'a\'`, 0}, {"SELECT 2", 13}}},
		{name: "quoted identifier", in: `SELECT ";"; SELECT 2`, want: []Piece{{`SELECT ";"`, 0}, {"SELECT 2", 12}}},
		{name: "backquoted identifier", in: "SELECT `;`; SELECT 2", want: []Piece{{"SELECT `;`", 0}, {"SELECT 2", 12}}},
		{name: "line comment", in: "SELECT 1 -- ; not here\n; SELECT 2", want: []Piece{{"SELECT 1 -- ; not here", 0}, {"SELECT 2", 25}}},
		{name: "line comment without space", in: "SELECT 1 --;\n; SELECT 2", want: []Piece{{"SELECT 1 --;", 0}, {"SELECT 2", 15}}},
		{name: "block comment", in: "SELECT /* ; */ 1; SELECT 2", want: []Piece{{"SELECT /* ; */ 1", 0}, {"SELECT 2", 18}}},
		{name: "nested block comment", in: "/* /* ; */ ; */ SELECT 1; SELECT 2", want: []Piece{{"/* /* ; */ ; */ SELECT 1", 0}, {"SELECT 2", 26}}},
		{name: "leading comment kept", in: "-- head\nSELECT 1", want: []Piece{{"-- head\nSELECT 1", 0}}},
		{name: "dollar quote", in: "SELECT $$a;b$$; SELECT 2", want: []Piece{{"SELECT $$a;b$$", 0}, {"SELECT 2", 16}}},
		{name: "tagged dollar quote", in: "SELECT $x$ ; $$ ; $x$; SELECT 2", want: []Piece{{"SELECT $x$ ; $$ ; $x$", 0}, {"SELECT 2", 23}}},
		{name: "dollar inside a word", in: "SELECT a$b; SELECT $c$", want: []Piece{{"SELECT a$b", 0}, {"SELECT $c$", 12}}},
		{name: "parameters", in: "SELECT $1; SELECT $2", want: []Piece{{"SELECT $1", 0}, {"SELECT $2", 11}}},
		{name: "unterminated string swallows the rest", in: "SELECT 'a; SELECT 2", want: []Piece{{"SELECT 'a; SELECT 2", 0}}},
		{name: "unterminated comment", in: "SELECT 1; /* ; SELECT 2", want: []Piece{{"SELECT 1", 0}, {"/* ; SELECT 2", 10}}},
		{name: "unterminated dollar quote", in: "SELECT $$ ; x", want: []Piece{{"SELECT $$ ; x", 0}}},
		{name: "multi-byte offsets are bytes", in: "SELECT 'é'; SELECT 2", want: []Piece{{"SELECT 'é'", 0}, {"SELECT 2", 13}}},
		{name: "trailing comment piece dropped", in: "SELECT 1; -- bye", want: []Piece{{"SELECT 1", 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Split(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Split(%q)\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
			for _, p := range got {
				if tc.in[p.Offset:p.Offset+len(p.Text)] != p.Text {
					t.Errorf("piece %q is not at offset %d", p.Text, p.Offset)
				}
			}
		})
	}
}

func TestLex(t *testing.T) {
	type tok struct {
		kind tokKind
		val  string
	}
	for _, tc := range []struct {
		name string
		in   string
		want []tok
	}{
		{name: "words fold", in: "SELECT Foo", want: []tok{{tkIdent, "select"}, {tkIdent, "foo"}}},
		{name: "quoted keep case", in: "\"Foo\"\"x\" `B``ar`", want: []tok{{tkQIdent, `Foo"x`}, {tkQIdent, "B`ar"}}},
		{name: "strings", in: `'it''s' 'a\b' $$x'y$$ $t$ $$ $t$`, want: []tok{{tkString, "it's"}, {tkString, `a\b`}, {tkString, "x'y"}, {tkString, " $$ "}}},
		{name: "numbers", in: "1 1.5 .5 1e3 2.5E-3 0x1F 7abc", want: []tok{{tkNumber, "1"}, {tkNumber, "1.5"}, {tkNumber, ".5"}, {tkNumber, "1e3"}, {tkNumber, "2.5E-3"}, {tkNumber, "0x1F"}, {tkNumber, "7abc"}}},
		{name: "params", in: "$1 $23", want: []tok{{tkParam, "$1"}, {tkParam, "$23"}}},
		{name: "operators", in: "a<=b<>c!=d::e||f-g", want: []tok{{tkIdent, "a"}, {tkOp, "<="}, {tkIdent, "b"}, {tkOp, "<>"}, {tkIdent, "c"}, {tkOp, "!="}, {tkIdent, "d"}, {tkOp, "::"}, {tkIdent, "e"}, {tkOp, "||"}, {tkIdent, "f"}, {tkOp, "-"}, {tkIdent, "g"}}},
		{name: "comments", in: "a -- x\n/* y /* z */ */ b--c\nd", want: []tok{{tkIdent, "a"}, {tkIdent, "b"}, {tkIdent, "d"}}},
		{name: "dollar in word", in: "a$b", want: []tok{{tkIdent, "a$b"}}},
		{name: "non-ASCII word", in: "Été", want: []tok{{tkIdent, "été"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toks, err := lex(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			var got []tok
			for _, tk := range toks[:len(toks)-1] {
				got = append(got, tok{tk.kind, tk.val})
				if tk.start >= tk.end || tk.end > len(tc.in) {
					t.Errorf("token %q has bad span [%d, %d)", tk.val, tk.start, tk.end)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("lex(%q)\n got %v\nwant %v", tc.in, got, tc.want)
			}
		})
	}
}
