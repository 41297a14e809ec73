package server

import "strings"

// firstKeyword returns the first word of a statement, upper-cased, after
// white space and -- or /* */ comments; "" if there is none.
func firstKeyword(text string) string {
	i := 0
	for i < len(text) {
		switch {
		case strings.HasPrefix(text[i:], "--"):
			j := strings.IndexByte(text[i:], '\n')
			if j < 0 {
				return ""
			}
			i += j + 1
		case strings.HasPrefix(text[i:], "/*"):
			// Block comments nest, as in PostgreSQL.
			depth := 0
			for i < len(text) {
				if strings.HasPrefix(text[i:], "/*") {
					depth++
					i += 2
				} else if strings.HasPrefix(text[i:], "*/") {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
		case strings.IndexByte(" \t\n\r\f\v", text[i]) >= 0:
			i++
		default:
			j := i
			for j < len(text) && (text[j] >= 'a' && text[j] <= 'z' || text[j] >= 'A' && text[j] <= 'Z') {
				j++
			}
			return strings.ToUpper(text[i:j])
		}
	}
	return ""
}

// endsTransaction reports whether a statement may run in a failed
// transaction block: PostgreSQL accepts only the statements that end it.
func endsTransaction(text string) bool {
	switch firstKeyword(text) {
	case "ROLLBACK", "ABORT", "COMMIT", "END":
		return true
	}
	return false
}
