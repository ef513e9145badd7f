package config

import "strings"

// keyLines maps every dotted key a TOML document defines ("threads", "limits.max_tokens") to the
// 1-based line that defines it, so errors about values can point at the line. The toml package
// keeps key positions to itself, hence this scanner. It understands table headers, bare, quoted
// and dotted keys, and skips the insides of multi-line strings; keys inside inline tables are not
// listed (lineOf falls back to the key that holds the inline table).
func keyLines(src string) map[string]int {
	lines := make(map[string]int)
	var table []string
	inMulti := "" // the delimiter of the multi-line string we are inside, if any
	for i, line := range strings.Split(src, "\n") {
		n := i + 1
		if inMulti != "" {
			if strings.Count(line, inMulti)%2 == 1 {
				inMulti = ""
			}
			continue
		}
		s := strings.TrimSpace(line)
		if s == "" || s[0] == '#' {
			continue
		}
		if s[0] == '[' {
			s = strings.TrimLeft(s, "[")
			parts, rest, ok := scanKey(s)
			if ok && strings.HasPrefix(strings.TrimSpace(rest), "]") {
				table = parts
				lines[strings.Join(table, ".")] = n
			}
			continue
		}
		parts, rest, ok := scanKey(s)
		rest = strings.TrimSpace(rest)
		if !ok || !strings.HasPrefix(rest, "=") {
			continue
		}
		full := append(append([]string(nil), table...), parts...)
		lines[strings.Join(full, ".")] = n
		for _, d := range []string{`"""`, `'''`} {
			if strings.Count(rest, d)%2 == 1 {
				inMulti = d
				break
			}
		}
	}
	return lines
}

// scanKey reads a possibly dotted key from the start of s and returns its parts and what follows.
func scanKey(s string) (parts []string, rest string, ok bool) {
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return nil, "", false
		}
		var part string
		switch s[0] {
		case '"', '\'':
			end := strings.IndexByte(s[1:], s[0])
			if end < 0 {
				return nil, "", false
			}
			part, s = s[1:1+end], s[2+end:]
		default:
			j := 0
			for j < len(s) && isBareKeyByte(s[j]) {
				j++
			}
			if j == 0 {
				return nil, "", false
			}
			part, s = s[:j], s[j:]
		}
		parts = append(parts, part)
		t := strings.TrimLeft(s, " \t")
		if !strings.HasPrefix(t, ".") {
			return parts, s, true
		}
		s = t[1:]
	}
}

func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// lineOf finds the line defining key, or of the nearest enclosing table or inline table; 0 if none.
func lineOf(lines map[string]int, key string) int {
	for {
		if n, ok := lines[key]; ok {
			return n
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			return 0
		}
		key = key[:i]
	}
}
