// Package tokenizer turns text into token ids and back the way llama.cpp does for the
// vocabularies stored in GGUF files: SentencePiece-style BPE ("llama", SPM) and GPT-2
// byte-level BPE ("gpt2") with the pre-tokenizers named by tokenizer.ggml.pre
// ("default", "gpt-2", "llama-bpe"/"llama3", "qwen2", "starcoder", "smollm",
// "deepseek-coder", "deepseek-llm", "falcon" and their llama.cpp aliases).
//
// A Tokenizer is immutable after construction and safe for concurrent use; Encode and
// Decode allocate only in proportion to their input.
//
// Where llama.cpp fails or garbles, this package does something defined instead:
//   - invalid UTF-8 given to a BPE vocabulary is encoded byte for byte (llama.cpp first
//     replaces it with U+FFFD), so decoding gives the same bytes back (up to the
//     clean-up of spaces some pre-tokenizers ask for);
//   - a BPE merge whose parts or result are not tokens is ignored, and a symbol that is
//     no token becomes UNK (or nothing); an SPM byte without a byte token becomes UNK
//     (llama.cpp throws);
//   - a BPE token character outside the GPT-2 byte alphabet decodes to its UTF-8
//     (llama.cpp writes an "[UNK_BYTE_...]" marker).
//
// Not implemented: the per-model LSTRIP/RSTRIP attributes llama.cpp gives special tokens
// of a few models by name (phi-3, jina), and vocabularies other than SPM and BPE
// (WPM, UGM, RWKV).
package tokenizer

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// TokenType is a value of tokenizer.ggml.token_type (llama.cpp's llama_token_type).
type TokenType int32

// Token types as stored in GGUF files.
const (
	TypeUndefined   TokenType = 0
	TypeNormal      TokenType = 1
	TypeUnknown     TokenType = 2
	TypeControl     TokenType = 3 // <s>, </s>, <|eot_id|>...: decode to "" and match only with parseSpecial
	TypeUserDefined TokenType = 4 // added tokens: always matched verbatim, decoded verbatim
	TypeUnused      TokenType = 5
	TypeByte        TokenType = 6 // <0xNN> byte-fallback tokens
)

// Vocab is everything a Tokenizer is built from, field for field what FromGGUF reads
// from tokenizer.ggml.*. New applies no defaults to it: ids of absent tokens are -1.
type Vocab struct {
	Model  string      // "llama" (SPM) or "gpt2" (byte-level BPE)
	Pre    string      // pre-tokenizer for "gpt2" ("" means "default"); ignored for "llama"
	Tokens []string    // token text by id
	Scores []float32   // SPM merge priorities by id; nil means all zero
	Types  []TokenType // by id; nil means all TypeNormal
	Merges []string    // BPE merges "left right", best first; "gpt2" only

	BOS, EOS, EOT, EOM, UNK, PAD int32 // -1 when the vocabulary has none

	AddBOS         bool // the model wants BOS in front of a prompt
	AddEOS         bool // the model wants EOS after a prompt
	AddSpacePrefix bool // SPM: a "▁" is put in front of text (and stripped again by Decode)
}

type kind uint8

const (
	kindSPM kind = iota
	kindBPE
)

// Tokenizer encodes and decodes text for one vocabulary.
type Tokenizer struct {
	model, pre string
	kind       kind

	tokens []string
	scores []float32
	types  []TokenType
	ids    map[string]int32

	bos, eos, eot, eom, unk, pad int32
	addBOS, addEOS               bool
	addSpacePrefix               bool
	cleanSpaces                  bool // BPE: llama.cpp's clean_up_tokenization_spaces in Decode
	ignoreMerges                 bool // BPE: a word that is itself a token is not merged (llama3)

	eog     []int32 // sorted
	special []int32 // control, user-defined and unknown tokens, longest text first
	maxText int     // see MaxTextBytes

	// decoded bytes of each token (control/unknown/unused tokens empty): piece i is
	// pieceData[pieceOff[i]:pieceOff[i+1]].
	pieceData []byte
	pieceOff  []uint32

	// SPM
	byteToken [256]int32 // id of <0xNN>, else of the one-byte token, else -1

	// BPE
	split      *pretokenizer
	merges     map[uint64]merge // (left id << 32 | right id) -> merge
	byteSymbol [256]int32       // id of the token spelling one byte in the GPT-2 byte alphabet
}

// merge is a BPE merge rule: its rank (lower merges first) and the token it makes.
type merge struct {
	rank int32
	id   int32
}

// New builds a Tokenizer from v, which it keeps: the slices must not change afterwards.
// It fails on an unknown model or pre-tokenizer, duplicate token texts, array lengths
// that disagree, special ids out of range, or AddBOS/AddEOS without a BOS/EOS id. An
// empty token is renamed "[EMPTY_<id>]" as llama.cpp does.
func New(v Vocab) (*Tokenizer, error) {
	t := &Tokenizer{
		model: v.Model, pre: v.Pre,
		tokens: v.Tokens,
		bos:    v.BOS, eos: v.EOS, eot: v.EOT, eom: v.EOM, unk: v.UNK, pad: v.PAD,
		addBOS: v.AddBOS, addEOS: v.AddEOS, addSpacePrefix: v.AddSpacePrefix,
	}
	n := len(v.Tokens)
	if n == 0 {
		return nil, fmt.Errorf("tokenizer: empty vocabulary")
	}
	if n > 1<<31-1 {
		return nil, fmt.Errorf("tokenizer: %d tokens do not fit int32 ids", n)
	}
	switch v.Model {
	case "llama":
		t.kind = kindSPM
		t.pre = ""
	case "gpt2":
		t.kind = kindBPE
		if t.pre == "" {
			t.pre = "default"
		}
		p, ok := pretokenizers[t.pre]
		if !ok {
			return nil, fmt.Errorf("tokenizer: unknown pre-tokenizer %q", t.pre)
		}
		t.split = p
		t.cleanSpaces = p.cleanSpaces
		t.ignoreMerges = p.ignoreMerges
	default:
		return nil, fmt.Errorf("tokenizer: unsupported tokenizer model %q", v.Model)
	}

	t.scores = v.Scores
	if t.scores == nil {
		t.scores = make([]float32, n)
	} else if len(t.scores) < n {
		return nil, fmt.Errorf("tokenizer: %d scores for %d tokens", len(t.scores), n)
	}
	t.types = v.Types
	if t.types == nil {
		t.types = make([]TokenType, n)
		for i := range t.types {
			t.types[i] = TypeNormal
		}
	} else if len(t.types) < n {
		return nil, fmt.Errorf("tokenizer: %d token types for %d tokens", len(t.types), n)
	}
	t.types = slices.Clone(t.types[:n]) // the EOG detection below may promote types

	t.ids = make(map[string]int32, n)
	cloned := false
	for i, s := range v.Tokens {
		if s == "" {
			// llama.cpp renames empty tokens rather than refusing the vocabulary.
			if !cloned {
				t.tokens, cloned = slices.Clone(v.Tokens), true
			}
			s = fmt.Sprintf("[EMPTY_%d]", i)
			t.tokens[i] = s
		}
		if j, dup := t.ids[s]; dup {
			return nil, fmt.Errorf("tokenizer: duplicate token %q has ids %d and %d", s, j, i)
		}
		t.ids[s] = int32(i)
	}

	for _, sp := range []struct {
		name string
		id   int32
	}{{"BOS", t.bos}, {"EOS", t.eos}, {"EOT", t.eot}, {"EOM", t.eom}, {"UNK", t.unk}, {"PAD", t.pad}} {
		if sp.id < -1 || sp.id >= int32(n) {
			return nil, fmt.Errorf("tokenizer: %s id %d out of range [0,%d)", sp.name, sp.id, n)
		}
	}
	if t.addBOS && t.bos < 0 {
		return nil, fmt.Errorf("tokenizer: add_bos_token is true, but there is no BOS token")
	}
	if t.addEOS && t.eos < 0 {
		return nil, fmt.Errorf("tokenizer: add_eos_token is true, but there is no EOS token")
	}

	t.findEOG()

	for i := range t.byteToken {
		t.byteToken[i] = -1
		t.byteSymbol[i] = -1
	}
	switch t.kind {
	case kindSPM:
		for b := range 256 {
			if id, ok := t.ids[fmt.Sprintf("<0x%02X>", b)]; ok {
				t.byteToken[b] = id
			} else if id, ok := t.ids[string([]byte{byte(b)})]; ok {
				t.byteToken[b] = id
			}
		}
	case kindBPE:
		for b := range 256 {
			if id, ok := t.ids[string(byteRune[b])]; ok {
				t.byteSymbol[b] = id
			}
		}
		if err := t.loadMerges(v.Merges); err != nil {
			return nil, err
		}
	}

	for i, ty := range t.types {
		if ty == TypeControl || ty == TypeUserDefined || ty == TypeUnknown {
			t.special = append(t.special, int32(i))
		}
	}
	// Longest first, so that a special token containing another wins, as in llama.cpp;
	// ties by id to be deterministic.
	slices.SortStableFunc(t.special, func(a, b int32) int {
		return cmp.Compare(len(t.tokens[b]), len(t.tokens[a]))
	})

	t.buildPieces()
	// A token covers no more input than its stored text: stored texts spell a space as "▁"
	// (3 bytes), a byte as "<0xNN>" or as a 1-2 byte GPT-2 character, and special tokens as
	// the text they match. An unknown character becomes one UNK token: at most 4 bytes.
	t.maxText = utf8.UTFMax
	for _, tok := range t.tokens {
		t.maxText = max(t.maxText, len(tok))
	}
	return t, nil
}

func (t *Tokenizer) loadMerges(merges []string) error {
	if len(merges) == 0 {
		return fmt.Errorf("tokenizer: gpt2 vocabulary without merges")
	}
	t.merges = make(map[uint64]merge, len(merges))
	for rank, m := range merges {
		// The separator is the first space after the first byte, as in llama.cpp (a
		// byte-level token never contains a space, but be safe with a leading one).
		k := strings.IndexByte(m[min(1, len(m)):], ' ')
		if k < 0 {
			continue // malformed: llama.cpp files it under ("", "") where it never matches
		}
		k += min(1, len(m))
		left, lok := t.ids[m[:k]]
		right, rok := t.ids[m[k+1:]]
		// A merge whose parts or result are not tokens can never produce a token; skip it.
		res, ook := t.ids[m[:k]+m[k+1:]]
		if !lok || !rok || !ook {
			continue
		}
		key := uint64(uint32(left))<<32 | uint64(uint32(right))
		if _, dup := t.merges[key]; !dup {
			t.merges[key] = merge{rank: int32(rank), id: res}
		}
	}
	return nil
}

// eogTexts are the token texts llama.cpp treats as end of generation whatever the
// metadata says (llama_vocab::impl::load).
var eogTexts = []string{
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>",
	"<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>",
	"<end_of_utterance>", "<｜end▁of▁sentence｜>",
}

// eotTexts are the texts llama.cpp takes as the EOT token when metadata names none.
var eotTexts = []string{
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
	"<|end_of_text|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
}

// findEOG fills in EOT/EOM by text when absent and collects the end-of-generation set,
// marking every such token as control (llama.cpp does the same: a token that ends
// generation must not be printed).
func (t *Tokenizer) findEOG() {
	mark := func(id int32) {
		if t.types[id] != TypeControl {
			t.types[id] = TypeControl
		}
	}
	if t.eot < 0 {
		// llama.cpp walks an unordered map here; take the lowest id for determinism.
		for _, s := range eotTexts {
			if id, ok := t.ids[s]; ok && (t.eot < 0 || id < t.eot) {
				t.eot = id
			}
		}
		if t.eot >= 0 {
			mark(t.eot)
		}
	}
	if t.eom < 0 {
		if id, ok := t.ids["<|eom_id|>"]; ok {
			t.eom = id
			mark(id)
		}
	}
	set := map[int32]bool{}
	for _, s := range eogTexts {
		if id, ok := t.ids[s]; ok {
			set[id] = true
			mark(id)
		}
	}
	for _, id := range []int32{t.eos, t.eot, t.eom} {
		if id >= 0 {
			set[id] = true
		}
	}
	// gpt-oss (harmony): <|end|> ends a message, not the generation, when <|return|>
	// and <|call|> exist.
	_, hasReturn := t.ids["<|return|>"]
	_, hasCall := t.ids["<|call|>"]
	if end, hasEnd := t.ids["<|end|>"]; hasReturn && hasCall && hasEnd {
		delete(set, end)
		t.types[end] = TypeUserDefined
	}
	for id := range set {
		t.eog = append(t.eog, id)
	}
	slices.Sort(t.eog)
}

// buildPieces precomputes what each token decodes to (llama_token_to_piece with
// special=false): nothing for control, unknown, unused and undefined tokens, the byte for
// byte tokens, the text verbatim for user-defined tokens, and for normal tokens "▁" as a
// space (SPM) or the GPT-2 byte alphabet mapped back to bytes (BPE).
func (t *Tokenizer) buildPieces() {
	t.pieceOff = make([]uint32, len(t.tokens)+1)
	data := make([]byte, 0, len(t.tokens)*6)
	for i, s := range t.tokens {
		switch t.types[i] {
		case TypeUserDefined:
			data = append(data, s...)
		case TypeByte:
			if b, ok := parseByteToken(s); ok {
				data = append(data, b)
			}
		case TypeNormal:
			if t.kind == kindSPM {
				data = appendUnescaped(data, s)
			} else {
				data = appendByteDecoded(data, s)
			}
		}
		t.pieceOff[i+1] = uint32(len(data))
	}
	t.pieceData = data
}

// parseByteToken reads "<0xNN>".
func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexVal(s[3])
	lo, ok2 := hexVal(s[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

const spaceMark = "\u2581" // "▁", SentencePiece's visible space

func appendUnescaped(dst []byte, s string) []byte {
	for {
		k := strings.Index(s, spaceMark)
		if k < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:k]...)
		dst = append(dst, ' ')
		s = s[k+len(spaceMark):]
	}
}

// appendByteDecoded maps a byte-level BPE token back to bytes. A rune outside the GPT-2
// byte alphabet is kept as its UTF-8 (llama.cpp inserts an "[UNK_BYTE_...]" marker).
func appendByteDecoded(dst []byte, s string) []byte {
	for _, r := range s {
		if r < rune(len(runeByte)) && runeByte[r] >= 0 {
			dst = append(dst, byte(runeByte[r]))
		} else {
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}

// Model is tokenizer.ggml.model: "llama" or "gpt2".
func (t *Tokenizer) Model() string { return t.model }

// Pre is the pre-tokenizer name for BPE vocabularies ("" for SPM).
func (t *Tokenizer) Pre() string { return t.pre }

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// BOS is the beginning-of-sequence id, or -1.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS is the end-of-sequence id, or -1.
func (t *Tokenizer) EOS() int32 { return t.eos }

// EOT is the end-of-turn id, or -1.
func (t *Tokenizer) EOT() int32 { return t.eot }

// EOM is the end-of-message id (Llama 3.1 tool calls), or -1.
func (t *Tokenizer) EOM() int32 { return t.eom }

// UNK is the unknown-token id, or -1.
func (t *Tokenizer) UNK() int32 { return t.unk }

// PAD is the padding id, or -1.
func (t *Tokenizer) PAD() int32 { return t.pad }

// AddBOS reports whether the model wants BOS in front of a prompt (pass it to Encode).
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// AddEOS reports whether the model wants EOS after a prompt; Encode never appends it.
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// MaxTextBytes bounds the bytes of input text one token of Encode's result stands for, so a
// text of n bytes encodes to at least n/MaxTextBytes tokens (BOS aside). A caller can refuse a
// text that is sure to be too long without encoding it. (The one exception: BPE text whose
// symbols are no tokens and no UNK exists encodes to nothing; such text is refused too.)
func (t *Tokenizer) MaxTextBytes() int { return t.maxText }

// IsEOG reports whether id ends generation: EOS, EOT, EOM, and the tokens llama.cpp
// recognises by their text (<|eot_id|>, <|im_end|>, <end_of_turn>, ...).
func (t *Tokenizer) IsEOG(id int32) bool {
	_, ok := slices.BinarySearch(t.eog, id)
	return ok
}

// EOG lists the end-of-generation ids in increasing order. The slice must not be modified.
func (t *Tokenizer) EOG() []int32 { return t.eog }

// Piece is the stored text of token id ("▁Hello", "Ġworld", "<0x0A>"), or "" if id is
// out of range.
func (t *Tokenizer) Piece(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// Type is the type of token id, or TypeUndefined if id is out of range.
func (t *Tokenizer) Type(id int32) TokenType {
	if id < 0 || int(id) >= len(t.types) {
		return TypeUndefined
	}
	return t.types[id]
}

// ID looks up the token whose stored text is piece.
func (t *Tokenizer) ID(piece string) (int32, bool) {
	id, ok := t.ids[piece]
	return id, ok
}

// Bytes is what id decodes to in the middle of a text (nothing for control tokens, the byte of a
// byte token, "▁" as a space); nil for ids out of range. The slice must not be modified.
func (t *Tokenizer) Bytes(id int32) []byte { return t.piece(id) }

// piece is what id decodes to; nil for ids out of range.
func (t *Tokenizer) piece(id int32) []byte {
	if id < 0 || int(id) >= len(t.tokens) {
		return nil
	}
	return t.pieceData[t.pieceOff[id]:t.pieceOff[id+1]]
}

// Encode splits text into token ids. With addBOS the BOS id is put first (pass AddBOS()
// to do what the model wants; nothing is added if there is no BOS). With parseSpecial,
// occurrences of control and unknown token texts ("<|eot_id|>", "<s>") become those
// tokens; user-defined tokens are always matched, as in llama.cpp. Invalid UTF-8 never
// fails: BPE encodes its bytes, SPM falls back to byte tokens.
func (t *Tokenizer) Encode(text string, addBOS, parseSpecial bool) []int32 {
	out := make([]int32, 0, len(text)/3+2)
	if addBOS && t.bos >= 0 {
		out = append(out, t.bos)
	}
	if text == "" {
		return out
	}
	frags := t.partition(text, parseSpecial)
	switch t.kind {
	case kindSPM:
		s := spmStates.Get().(*spmState)
		defer func() { putState(&spmStates, s, cap(s.syms)) }()
		prevSpecial := true // the first text gets the space prefix
		for _, f := range frags {
			if f.tok >= 0 {
				out = append(out, f.tok)
				prevSpecial = true
				continue
			}
			out = t.encodeSPM(s, out, text[f.start:f.end], t.addSpacePrefix && prevSpecial)
			prevSpecial = false
		}
	case kindBPE:
		s := bpeStates.Get().(*bpeState)
		defer func() { putState(&bpeStates, s, cap(s.runes)) }()
		for _, f := range frags {
			if f.tok >= 0 {
				out = append(out, f.tok)
				continue
			}
			out = t.encodeBPE(s, out, text[f.start:f.end])
		}
	}
	return out
}

// Scratch space of Encode calls, kept between calls so that encoding allocates little
// more than its result.
var (
	spmStates = sync.Pool{New: func() any { return new(spmState) }}
	bpeStates = sync.Pool{New: func() any { return new(bpeState) }}
)

// putState returns scratch space to its pool unless a huge input made it huge.
func putState[T any](p *sync.Pool, s *T, size int) {
	if size <= 1<<16 {
		p.Put(s)
	}
}

// fragment is a token found by partition (tok >= 0) or a run of text[start:end].
type fragment struct {
	start, end int
	tok        int32
}

// partition cuts the special-token texts out of text, longest token first, each token
// leftmost-first within what is still plain text: llama.cpp's tokenizer_st_partition.
func (t *Tokenizer) partition(text string, parseSpecial bool) []fragment {
	frags := []fragment{{0, len(text), -1}}
	var next []fragment
	for _, id := range t.special {
		if !parseSpecial && t.types[id] != TypeUserDefined {
			continue
		}
		s := t.tokens[id]
		if !strings.Contains(text, s) {
			continue
		}
		next = next[:0]
		for _, f := range frags {
			if f.tok >= 0 {
				next = append(next, f)
				continue
			}
			p := f.start
			for p < f.end {
				k := strings.Index(text[p:f.end], s)
				if k < 0 {
					break
				}
				if k > 0 {
					next = append(next, fragment{p, p + k, -1})
				}
				next = append(next, fragment{tok: id})
				p += k + len(s)
			}
			if p < f.end {
				next = append(next, fragment{p, f.end, -1})
			}
		}
		frags, next = next, frags
	}
	return frags
}

// Decode turns ids into text the way llama.cpp's llama_detokenize does with
// remove_special and unparse_special off: control and unknown tokens give nothing, byte
// tokens give their byte, an SPM vocabulary with a space prefix loses the leading space
// of the first token, and BPE vocabularies that ask for it get llama.cpp's
// clean_up_tokenization_spaces (" ," -> ","...). Ids out of range give nothing. The
// result may be invalid UTF-8 if the ids split a character.
func (t *Tokenizer) Decode(ids []int32) string {
	b := make([]byte, 0, len(ids)*4)
	removeSpace := t.addSpacePrefix
	for _, id := range ids {
		p := t.piece(id)
		if removeSpace && len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
		removeSpace = false
		b = append(b, p...)
	}
	if t.cleanSpaces {
		b = cleanSpaces(b)
	}
	return string(b)
}

// cleanSpaces is llama.cpp's clean_up_tokenization_spaces, pass for pass (the passes
// read characters they have already moved, so they are kept exactly as written there):
// drop the space before ? ! . , then the spaces around a lone apostrophe, then the space
// before 's 'm 're 've.
func cleanSpaces(b []byte) []byte {
	n := len(b)
	w := min(n, 1)
	for i := 1; i < n; i++ {
		x := b[i]
		if b[i-1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',') {
			w--
		}
		b[w] = x
		w++
	}
	n = w
	w = min(n, 1)
	for i := 1; i < n; i++ {
		x := b[i]
		if x == '\'' && i+1 < n && b[i-1] == ' ' && b[i+1] == ' ' {
			w--
			i++
			b[i] = 0 // the space after goes too; the next step must not see it as a space
		}
		b[w] = x
		w++
	}
	n = w
	w = min(n, 1)
	for i := 1; i < n; i++ {
		x := b[i]
		if b[i-1] == ' ' && x == '\'' && i+1 < n {
			x1 := b[i+1]
			if x1 == 's' || x1 == 'm' || (i+2 < n && (x1 == 'r' || x1 == 'v') && b[i+2] == 'e') {
				w--
			}
		}
		b[w] = x
		w++
	}
	return b[:w]
}
