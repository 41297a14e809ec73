package expr

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// likeRegexp translates a LIKE pattern to an anchored regexp: an
// independent reference for the hand-written matcher.
func likeRegexp(p string, ci bool) (*regexp.Regexp, bool) {
	var sb strings.Builder
	sb.WriteString(`(?s)^`)
	if ci {
		sb.WriteString(`(?i)`)
	}
	for i := 0; i < len(p); {
		r, w := utf8.DecodeRuneInString(p[i:])
		i += w
		switch r {
		case '%':
			sb.WriteString(`.*`)
		case '_':
			sb.WriteString(`.`)
		case '\\':
			if i >= len(p) {
				return nil, false
			}
			r, w = utf8.DecodeRuneInString(p[i:])
			i += w
			sb.WriteString(regexp.QuoteMeta(string(r)))
		default:
			sb.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	sb.WriteString(`$`)
	return regexp.MustCompile(sb.String()), true
}

func TestLikeMatcherAgainstRegexp(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	patAlphabet := []string{"a", "b", "é", "%", "%", "_", `\%`, `\_`, `\\`, "ab"}
	strAlphabet := []string{"a", "b", "é", "%", "_", `\`, "ab", "ba"}
	for range 3000 {
		var pb strings.Builder
		for range r.IntN(6) {
			pb.WriteString(patAlphabet[r.IntN(len(patAlphabet))])
		}
		pat := pb.String()
		m, err := compileLike(pat, false)
		re, ok := likeRegexp(pat, false)
		if !ok {
			if err == nil {
				t.Fatalf("pattern %q: no error for a trailing escape", pat)
			}
			continue
		}
		if err != nil {
			t.Fatalf("pattern %q: %v", pat, err)
		}
		for range 10 {
			var sb strings.Builder
			for range r.IntN(6) {
				sb.WriteString(strAlphabet[r.IntN(len(strAlphabet))])
			}
			s := sb.String()
			if got, want := m.match(s), re.MatchString(s); got != want {
				t.Fatalf("%q LIKE %q = %v, want %v", s, pat, got, want)
			}
		}
	}
}

func TestLikeCaseInsensitive(t *testing.T) {
	for _, tc := range []struct {
		s, p string
		want bool
	}{
		{"HeLLo", "hello", true},
		{"HeLLo", "H%O", true},
		{"ÉTÉ", "été", true},
		{"ÉTÉ", "_t_", true},
		{"abc", "ABD", false},
	} {
		m, err := compileLike(tc.p, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.match(tc.s); got != tc.want {
			t.Errorf("%q ILIKE %q = %v, want %v", tc.s, tc.p, got, tc.want)
		}
	}
}
