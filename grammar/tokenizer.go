package grammar

import "edgelm/tokenizer"

// VocabOf indexes a tokenizer's vocabulary: each token as the bytes it decodes to mid-text,
// control tokens never allowed, and the tokenizer's end-of-generation tokens.
func VocabOf(t *tokenizer.Tokenizer) *Vocab {
	pieces := make([][]byte, t.VocabSize())
	for i := range pieces {
		pieces[i] = t.Bytes(int32(i))
	}
	return NewVocab(pieces, t.EOG())
}
