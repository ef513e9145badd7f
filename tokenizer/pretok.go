package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Pre-tokenizers cut text into the words BPE merges within. Each is a list of stages,
// one per regular expression of llama.cpp's llm_tokenizer_bpe: a stage finds the
// leftmost matches of its expression in every piece left by the stage before and keeps
// both the matches and the text between them as pieces. The expressions use lookahead
// and Unicode classes Go's regexp lacks, so each stage is a hand-written matcher that
// reports how far its expression matches from a position, with the same alternation
// order and backtracking the expression has. \s is unicode.IsSpace (Unicode
// White_Space), \p{L} unicode.IsLetter, \p{N} unicode.IsNumber, \p{P} unicode.IsPunct.

// span is a byte range of the text being split.
type span struct{ start, end int }

// matcher reports where its expression, tried at rs[i], stops matching; i means no
// match. rs is the piece being split, so lookahead and $ see its end.
type matcher func(rs []rune, i int) int

type pretokenizer struct {
	stages       []matcher
	cleanSpaces  bool // llama.cpp's clean_spaces for this pre-tokenizer
	ignoreMerges bool
	addBOS       bool // llama.cpp's add_bos default for this pre-tokenizer
}

// split appends the words of text to dst. segs, runes and offs are scratch buffers.
func (p *pretokenizer) split(text string, dst []span, segs *[]span, runes *[]rune, offs *[]int) []span {
	rs, os := (*runes)[:0], (*offs)[:0]
	for i, r := range text { // an invalid byte is one U+FFFD rune, one byte wide
		rs = append(rs, r)
		os = append(os, i)
	}
	os = append(os, len(text))
	*runes, *offs = rs, os

	cur := append((*segs)[:0], span{0, len(rs)})
	var next []span
	for si, m := range p.stages {
		if si == len(p.stages)-1 {
			next = dst // the last stage writes straight into dst, in runes for now
		} else {
			next = nil
		}
		base := len(next)
		for _, sg := range cur {
			gap := sg.start
			for i := sg.start; i < sg.end; {
				e := sg.start + m(rs[sg.start:sg.end], i-sg.start)
				if e <= i {
					i++
					continue
				}
				if gap < i {
					next = append(next, span{gap, i})
				}
				next = append(next, span{i, e})
				i, gap = e, e
			}
			if gap < sg.end {
				next = append(next, span{gap, sg.end})
			}
		}
		if si == len(p.stages)-1 {
			for k := base; k < len(next); k++ {
				next[k] = span{os[next[k].start], os[next[k].end]}
			}
			*segs = cur
			return next
		}
		cur = next
	}
	return dst
}

func isSpace(r rune) bool  { return unicode.IsSpace(r) }
func isLetter(r rune) bool { return unicode.IsLetter(r) }
func isNumber(r rune) bool { return unicode.IsNumber(r) }
func isPunct(r rune) bool  { return unicode.IsPunct(r) }
func isNL(r rune) bool     { return r == '\r' || r == '\n' }

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool { return !isSpace(r) && !isLetter(r) && !isNumber(r) }

// run is the end of the run of runes from i satisfying f.
func run(rs []rune, i, end int, f func(rune) bool) int {
	for i < end && f(rs[i]) {
		i++
	}
	return i
}

// spaceTail matches \s+(?!\S)|\s+ at a space: the whole run of spaces if it ends the
// piece, else all of it but the last space (which goes with the next word), else the
// one space.
func spaceTail(rs []rune, i int) int {
	end := len(rs)
	k := run(rs, i, end, isSpace)
	if k == end {
		return k
	}
	if k-i >= 2 {
		return k - 1
	}
	return i + 1
}

// matchGPT2 is 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (GPT-2's expression; the contractions are case-sensitive).
func matchGPT2(rs []rune, i int) int {
	end := len(rs)
	r := rs[i]
	if r == '\'' && i+1 < end {
		switch c := rs[i+1]; {
		case c == 's' || c == 't' || c == 'm' || c == 'd':
			return i + 2
		case i+2 < end && (c == 'r' && rs[i+2] == 'e' || c == 'v' && rs[i+2] == 'e' || c == 'l' && rs[i+2] == 'l'):
			return i + 3
		}
	}
	j := i
	if r == ' ' && i+1 < end && !isSpace(rs[i+1]) {
		j = i + 1 // " ?" takes the space when a letter, digit or symbol follows
	}
	switch c := rs[j]; {
	case isLetter(c):
		return run(rs, j, end, isLetter)
	case isNumber(c):
		return run(rs, j, end, isNumber)
	case !isSpace(c):
		return run(rs, j, end, isOther)
	}
	return spaceTail(rs, i)
}

// llama3Like matches
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// (Llama 3 with maxDigits 3, Qwen2 with 1). The contractions are matched on ASCII
// letters of either case, as llama.cpp's rewrite of (?i:...) does.
func llama3Like(maxDigits int) matcher {
	return func(rs []rune, i int) int {
		end := len(rs)
		r := rs[i]
		if r == '\'' && i+1 < end {
			c := unicode.ToLower(rs[i+1])
			switch {
			case c == 's' || c == 't' || c == 'm' || c == 'd':
				if rs[i+1] < utf8.RuneSelf {
					return i + 2
				}
			case i+2 < end && rs[i+1] < utf8.RuneSelf && rs[i+2] < utf8.RuneSelf:
				c2 := unicode.ToLower(rs[i+2])
				if c == 'r' && c2 == 'e' || c == 'v' && c2 == 'e' || c == 'l' && c2 == 'l' {
					return i + 3
				}
			}
		}
		// [^\r\n\p{L}\p{N}]?\p{L}+
		if !isNL(r) && !isLetter(r) && !isNumber(r) && i+1 < end && isLetter(rs[i+1]) {
			return run(rs, i+1, end, isLetter)
		}
		if isLetter(r) {
			return run(rs, i, end, isLetter)
		}
		if isNumber(r) {
			k := i
			for k < end && k-i < maxDigits && isNumber(rs[k]) {
				k++
			}
			return k
		}
		//  ?[^\s\p{L}\p{N}]+[\r\n]*
		j := i
		if r == ' ' && i+1 < end && isOther(rs[i+1]) {
			j = i + 1
		}
		if isOther(rs[j]) {
			k := run(rs, j, end, isOther)
			return run(rs, k, end, isNL)
		}
		// r is a space. \s*[\r\n]+ ends after the last newline of the run of spaces.
		k := run(rs, i, end, isSpace)
		for p := k - 1; p >= i; p-- {
			if isNL(rs[p]) {
				return p + 1
			}
		}
		return spaceTail(rs, i)
	}
}

// matchOneDigit is \p{N}.
func matchOneDigit(rs []rune, i int) int {
	if isNumber(rs[i]) {
		return i + 1
	}
	return i
}

// matchDigits is \p{N}+.
func matchDigits(rs []rune, i int) int { return run(rs, i, len(rs), isNumber) }

// matchThreeASCIIDigits is [0-9][0-9][0-9].
func matchThreeASCIIDigits(rs []rune, i int) int {
	end := len(rs)
	if i+3 <= end && isASCIIDigit(rs[i]) && isASCIIDigit(rs[i+1]) && isASCIIDigit(rs[i+2]) {
		return i + 3
	}
	return i
}

func isASCIIDigit(r rune) bool { return '0' <= r && r <= '9' }

// matchNewline is [\r\n].
func matchNewline(rs []rune, i int) int {
	if isNL(rs[i]) {
		return i + 1
	}
	return i
}

// spaceThen matches \s?X+ for the class X.
func spaceThen(x func(rune) bool) matcher {
	return func(rs []rune, i int) int {
		end := len(rs)
		if isSpace(rs[i]) && i+1 < end && x(rs[i+1]) {
			return run(rs, i+1, end, x)
		}
		return run(rs, i, end, x)
	}
}

// runOf matches X+ for the class X.
func runOf(x func(rune) bool) matcher {
	return func(rs []rune, i int) int { return run(rs, i, len(rs), x) }
}

// matchTrailingSpace is \s+$: a run of spaces that ends the piece. Inside a run the
// answer is the one already given at its first space, which keeps this linear.
func matchTrailingSpace(rs []rune, i int) int {
	end := len(rs)
	if i > 0 && isSpace(rs[i-1]) {
		return i
	}
	if k := run(rs, i, end, isSpace); k == end {
		return k
	}
	return i
}

// isDefaultPunct is [\p{P}\$\+<=>\^~\|] (llama.cpp's default pre-tokenizer).
func isDefaultPunct(r rune) bool {
	switch r {
	case '$', '+', '<', '=', '>', '^', '~', '|':
		return true
	}
	return isPunct(r)
}

// isFalconPunct is [\p{P}\$\+<=>\^~\|`].
func isFalconPunct(r rune) bool { return r == '`' || isDefaultPunct(r) }

func inTable(t *unicode.RangeTable) func(rune) bool {
	return func(r rune) bool { return unicode.Is(t, r) }
}

// cjkTable is [一-龥ࠀ-一가-퟿] of the DeepSeek expressions (the second range, U+0800 to
// U+4E00, is as wide as it looks).
var cjkTable = &unicode.RangeTable{R16: []unicode.Range16{
	{Lo: 0x0800, Hi: 0x9FA5, Stride: 1},
	{Lo: 0xAC00, Hi: 0xD7FF, Stride: 1},
}}

// deepseekPunctTable is [!-/:-~！-／：-～‘-‟　-。] of DeepSeek LLM.
var deepseekPunctTable = &unicode.RangeTable{R16: []unicode.Range16{
	{Lo: 0x21, Hi: 0x2F, Stride: 1},
	{Lo: 0x3A, Hi: 0x7E, Stride: 1},
	{Lo: 0x2018, Hi: 0x201F, Stride: 1},
	{Lo: 0x3000, Hi: 0x3002, Stride: 1},
	{Lo: 0xFF01, Hi: 0xFF0F, Stride: 1},
	{Lo: 0xFF1A, Hi: 0xFF5E, Stride: 1},
}, LatinOffset: 2}

// deepseekLetterTable is the letter class of DeepSeek LLM's expression, which lists the
// cased letters (Lu, Ll, Lt) of Unicode range by range.
var deepseekLetterTable = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x41, 0x5A, 1}, {0x61, 0x7A, 1}, {0xB5, 0xB5, 1}, {0xC0, 0xD6, 1}, {0xD8, 0xF6, 1},
		{0xF8, 0x1BA, 1}, {0x1BC, 0x1BF, 1}, {0x1C4, 0x293, 1}, {0x295, 0x2AF, 1},
		{0x370, 0x373, 1}, {0x376, 0x377, 1}, {0x37B, 0x37D, 1}, {0x37F, 0x37F, 1},
		{0x386, 0x386, 1}, {0x388, 0x38A, 1}, {0x38C, 0x38C, 1}, {0x38E, 0x3A1, 1},
		{0x3A3, 0x3F5, 1}, {0x3F7, 0x481, 1}, {0x48A, 0x52F, 1}, {0x531, 0x556, 1},
		{0x10A0, 0x10C5, 1}, {0x13A0, 0x13F5, 1}, {0x13F8, 0x13FD, 1}, {0x1C90, 0x1CBA, 1},
		{0x1CBD, 0x1CBF, 1}, {0x1D00, 0x1D2B, 1}, {0x1D6B, 0x1D77, 1}, {0x1D79, 0x1D9A, 1},
		{0x1E00, 0x1F15, 1}, {0x1F18, 0x1F1D, 1}, {0x1F20, 0x1F45, 1}, {0x1F48, 0x1F4D, 1},
		{0x1F50, 0x1F57, 1}, {0x1F59, 0x1F5D, 2}, {0x1F5F, 0x1F7D, 1}, {0x1F80, 0x1FB4, 1},
		{0x1FB6, 0x1FBC, 1}, {0x1FBE, 0x1FBE, 1}, {0x1FC2, 0x1FC4, 1}, {0x1FC6, 0x1FCC, 1},
		{0x1FD0, 0x1FD3, 1}, {0x1FD6, 0x1FDB, 1}, {0x1FE0, 0x1FEC, 1}, {0x1FF2, 0x1FF4, 1},
		{0x1FF6, 0x1FFC, 1}, {0x2102, 0x2102, 1}, {0x2107, 0x2107, 1}, {0x210A, 0x2113, 1},
		{0x2115, 0x2115, 1}, {0x2119, 0x211D, 1}, {0x2124, 0x2128, 2}, {0x212A, 0x212D, 1},
		{0x212F, 0x2134, 1}, {0x2139, 0x2139, 1}, {0x213C, 0x213F, 1}, {0x2145, 0x2149, 1},
		{0x214E, 0x214E, 1}, {0x2183, 0x2184, 1}, {0x2C00, 0x2C7B, 1}, {0x2C7E, 0x2CE4, 1},
		{0x2CEB, 0x2CEE, 1}, {0x2CF2, 0x2CF3, 1}, {0xA640, 0xA66D, 1}, {0xA680, 0xA69B, 1},
		{0xA722, 0xA76F, 1}, {0xA771, 0xA787, 1}, {0xA78B, 0xA78E, 1}, {0xAB70, 0xABBF, 1},
		{0xFB00, 0xFB06, 1}, {0xFB13, 0xFB17, 1}, {0xFF21, 0xFF3A, 1}, {0xFF41, 0xFF5A, 1},
	},
	R32: []unicode.Range32{
		{0x10400, 0x1044F, 1}, {0x104B0, 0x104D3, 1}, {0x104D8, 0x104FB, 1},
		{0x10C80, 0x10CB2, 1}, {0x10CC0, 0x10CF2, 1}, {0x118A0, 0x118DF, 1},
		{0x1E900, 0x1E943, 1},
	},
	LatinOffset: 5,
}

// pretokenizers maps tokenizer.ggml.pre to its splitting and llama.cpp's flags for it.
var pretokenizers = map[string]*pretokenizer{}

func init() {
	gpt2 := []matcher{matchGPT2}
	llama3 := []matcher{llama3Like(3)}
	qwen2 := []matcher{llama3Like(1)}
	starcoder := []matcher{matchOneDigit, matchGPT2}
	reg := func(p pretokenizer, names ...string) {
		for _, n := range names {
			pretokenizers[n] = &p
		}
	}
	reg(pretokenizer{stages: []matcher{runOf(isDefaultPunct), matchGPT2, matchDigits, matchThreeASCIIDigits}, cleanSpaces: true}, "default")
	reg(pretokenizer{stages: gpt2, cleanSpaces: true}, "gpt-2", "phi-2", "mpt", "olmo", "jais", "exaone4",
		"jina-es", "jina-de", "jina-v2-es", "jina-v2-de", "gigachat")
	reg(pretokenizer{stages: []matcher{runOf(isFalconPunct), matchGPT2, matchThreeASCIIDigits}, cleanSpaces: true}, "falcon")
	reg(pretokenizer{stages: llama3, cleanSpaces: true, ignoreMerges: true, addBOS: true},
		"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral")
	reg(pretokenizer{stages: llama3, cleanSpaces: true}, "dbrx", "smaug-bpe")
	reg(pretokenizer{stages: qwen2}, "qwen2", "deepseek-r1-qwen")
	reg(pretokenizer{stages: qwen2, cleanSpaces: true}, "stablelm2", "megrez")
	reg(pretokenizer{stages: starcoder, cleanSpaces: true}, "starcoder", "refact", "codeshell", "exaone", "minerva-7b")
	reg(pretokenizer{stages: starcoder}, "smollm", "command-r")
	reg(pretokenizer{stages: []matcher{
		matchNewline, spaceThen(isLetter), spaceThen(isPunct), runOf(inTable(cjkTable)), matchOneDigit,
	}}, "deepseek-coder")
	reg(pretokenizer{stages: []matcher{
		matchNewline, spaceThen(inTable(deepseekLetterTable)), spaceThen(inTable(deepseekPunctTable)),
		matchTrailingSpace, runOf(inTable(cjkTable)), matchDigits,
	}}, "deepseek-llm")
}

// splitWords cuts text the way pre-tokenizer pre does (for tests).
func splitWords(pre, text string) ([]string, bool) {
	p, ok := pretokenizers[pre]
	if !ok {
		return nil, false
	}
	var segs []span
	var rs []rune
	var os []int
	var words []string
	for _, w := range p.split(text, nil, &segs, &rs, &os) {
		words = append(words, text[w.start:w.end])
	}
	return words, true
}
