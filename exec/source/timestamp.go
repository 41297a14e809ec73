package source

import "encoding/binary"

// Timestamps are milliseconds since the Unix epoch in UTC (sqltypes). The
// range the decoder accepts is the one an RFC 3339 string can express:
// years 0000 to 9999. Epoch milliseconds outside it are rejected too, so
// every stored timestamp converts to PostgreSQL's microseconds without
// overflow and prints as RFC 3339.
const (
	minMillis int64 = -62167219200000 // 0000-01-01T00:00:00.000Z
	maxMillis int64 = 253402300799999 // 9999-12-31T23:59:59.999Z
)

// parseTimestamp parses the timestamp strings the JSON format accepts and
// returns milliseconds since the Unix epoch (UTC):
//
//	YYYY-MM-DD('T'|'t'|' ')hh:mm:ss[.f{1,9}][('Z'|'z'|('+'|'-')hh:mm)]
//
// This is RFC 3339 (which allows a space or a lower-case t as separator),
// plus the zone-less form "2006-01-02 15:04:05[.fff]" (also with 'T'),
// which is read as UTC. Digits below the millisecond are dropped (the
// result is the floor, also before 1970). ok is false for anything else,
// including out-of-range fields (month 13, February 30, second 60, offset
// hour 24) and results outside [minMillis, maxMillis].
//
// It is hand-written rather than time.Parse because it runs once per event
// on the hot path; the test file checks it against a time.Date reference.
// c, if not nil, remembers the last date seen: consecutive events nearly
// always share it.
func parseTimestamp(s []byte, c *dateCache) (ms int64, ok bool) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	if c := s[10]; c != 'T' && c != 't' && c != ' ' {
		return 0, false
	}
	var days int64
	if c != nil && c.has(s) {
		days = c.days
	} else {
		var ok bool
		if days, ok = parseDate(s); !ok {
			return 0, false
		}
		if c != nil {
			c.set(s, days)
		}
	}
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !ok4 || !ok5 || !ok6 || hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	rest := s[19:]
	var frac int64 // milliseconds, 0..999
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			if n <= 3 {
				frac = frac*10 + int64(rest[n]-'0')
			}
			n++
		}
		nd := n - 1
		if nd == 0 || nd > 9 {
			return 0, false
		}
		for i := nd; i < 3; i++ {
			frac *= 10
		}
		rest = rest[n:]
	}
	var offset int64 // seconds east of UTC
	switch {
	case len(rest) == 0:
	case len(rest) == 1 && (rest[0] == 'Z' || rest[0] == 'z'):
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, okh := digits(rest[1:3])
		om, okm := digits(rest[4:6])
		if !okh || !okm || oh > 23 || om > 59 {
			return 0, false
		}
		offset = oh*3600 + om*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}
	secs := days*86400 + hour*3600 + minute*60 + sec - offset
	ms = secs*1000 + frac
	if ms < minMillis || ms > maxMillis {
		return 0, false
	}
	return ms, true
}

// parseDate parses "YYYY-MM-DD" at the start of s (len(s) >= 10) and
// returns the days since 1970-01-01.
func parseDate(s []byte) (days int64, ok bool) {
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	if !ok1 || !ok2 || !ok3 || s[4] != '-' || s[7] != '-' ||
		month < 1 || month > 12 || day < 1 || day > daysIn(year, month) {
		return 0, false
	}
	return daysFromCivil(year, month, day), true
}

// scanTimestamp is parseTimestamp for the shapes producers nearly always
// write, read straight from a JSON text: b[i:] is the text of a string
// after its opening quote, and the string must be
//
//	YYYY-MM-DD('T'|'t'|' ')hh:mm:ss[.f{1,9}]['Z'|'z']
//
// with no escapes. It returns parseTimestamp's milliseconds and the index
// after the closing quote, or end -1 when the string has another shape
// (a zone offset, an escape) or is not a timestamp; the caller then asks
// parseTimestamp, which decides.
func scanTimestamp(b []byte, i int, c *dateCache) (ms int64, end int) {
	if i < 0 || len(b)-i < 20 {
		return 0, -1
	}
	s := b[i:]
	_ = s[19]
	var days int64
	if c.has(s) {
		days = c.days
	} else {
		var ok bool
		if days, ok = parseDate(s); !ok {
			return 0, -1
		}
		c.set(s, days)
	}
	if t := s[10]; t != 'T' && t != 't' && t != ' ' || s[13] != ':' || s[16] != ':' {
		return 0, -1
	}
	h1, h2, m1, m2, s1, s2 := s[11]-'0', s[12]-'0', s[14]-'0', s[15]-'0', s[17]-'0', s[18]-'0'
	if h1 > 2 || h2 > 9 || m1 > 5 || m2 > 9 || s1 > 5 || s2 > 9 {
		return 0, -1
	}
	hour := int64(h1)*10 + int64(h2)
	if hour > 23 {
		return 0, -1
	}
	n := 19
	var frac int64 // milliseconds
	switch {
	case s[n] != '.':
	case len(s) > 23 && s[20]-'0' <= 9 && s[21]-'0' <= 9 && s[22]-'0' <= 9 && s[23]-'0' > 9:
		// Milliseconds, the usual precision.
		frac = int64(s[20]-'0')*100 + int64(s[21]-'0')*10 + int64(s[22]-'0')
		n = 23
	default:
		n++
		start := n
		for n < len(s) && s[n]-'0' <= 9 {
			if n-start < 3 {
				frac = frac*10 + int64(s[n]-'0')
			}
			n++
		}
		nd := n - start
		if nd == 0 || nd > 9 {
			return 0, -1
		}
		for ; nd < 3; nd++ {
			frac *= 10
		}
	}
	if n < len(s) && (s[n] == 'Z' || s[n] == 'z') {
		n++
	}
	if n >= len(s) || s[n] != '"' {
		return 0, -1
	}
	secs := days*86400 + hour*3600 + int64(m1*10+m2)*60 + int64(s1*10+s2)
	ms = secs*1000 + frac
	if ms < minMillis || ms > maxMillis {
		return 0, -1
	}
	return ms, i + n + 1
}

// digits parses a short run of ASCII digits.
func digits(b []byte) (int64, bool) {
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// daysIn returns the number of days of month (1-12) in year (proleptic
// Gregorian).
func daysIn(year, month int64) int64 {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the number of days from 1970-01-01 to the given
// proleptic Gregorian date (Howard Hinnant's days_from_civil).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// dateCache is the last valid date parseTimestamp saw.
type dateCache struct {
	// lo and hi are the bytes of "YYYY-MM-DD", little-endian.
	lo    uint64
	hi    uint16
	days  int64 // since 1970-01-01
	valid bool
}

// has reports whether s (len(s) >= 10) starts with the cached date.
func (c *dateCache) has(s []byte) bool {
	return c.valid && binary.LittleEndian.Uint64(s) == c.lo && binary.LittleEndian.Uint16(s[8:]) == c.hi
}

// set caches the date at the start of s, which is days since the epoch.
func (c *dateCache) set(s []byte, days int64) {
	c.lo, c.hi = binary.LittleEndian.Uint64(s), binary.LittleEndian.Uint16(s[8:])
	c.days, c.valid = days, true
}
