package tokenizer

import (
	"fmt"
	"slices"
	"strings"

	"edgelm/gguf"
)

// GGUF metadata keys read by FromGGUF.
const (
	keyModel          = "tokenizer.ggml.model"
	keyPre            = "tokenizer.ggml.pre"
	keyTokens         = "tokenizer.ggml.tokens"
	keyScores         = "tokenizer.ggml.scores"
	keyTypes          = "tokenizer.ggml.token_type"
	keyMerges         = "tokenizer.ggml.merges"
	keyBOS            = "tokenizer.ggml.bos_token_id"
	keyEOS            = "tokenizer.ggml.eos_token_id"
	keyEOT            = "tokenizer.ggml.eot_token_id"
	keyEOM            = "tokenizer.ggml.eom_token_id"
	keyUNK            = "tokenizer.ggml.unknown_token_id"
	keyPAD            = "tokenizer.ggml.padding_token_id"
	keyAddBOS         = "tokenizer.ggml.add_bos_token"
	keyAddEOS         = "tokenizer.ggml.add_eos_token"
	keyAddSpacePrefix = "tokenizer.ggml.add_space_prefix"
)

// FromGGUF builds the Tokenizer described by f's tokenizer.ggml.* metadata, with
// llama.cpp's defaults for what is absent:
//
//   - "llama" (SPM): BOS 1, EOS 2, UNK 0, add_bos true, add_space_prefix true;
//   - "gpt2" (BPE): BOS and EOS 11 (llama.cpp's placeholder), no UNK, add_bos true only
//     for the Llama 3 family of pre-tokenizers, no space prefix; a missing pre means
//     "default", an unknown one is an error.
//
// A special id in the metadata that is out of range is ignored (the default stays), a
// default out of range becomes -1, and EOT/EOM are recognised by their text when absent.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	var v Vocab
	var ok bool
	if v.Model, ok = f.String(keyModel); !ok {
		return nil, fmt.Errorf("tokenizer: %s missing", keyModel)
	}
	v.Pre, _ = f.String(keyPre)
	var err error
	if v.Tokens, err = f.Strings(keyTokens); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", keyTokens, err)
	}
	n := len(v.Tokens)
	if _, ok := f.Value(keyScores); ok {
		if v.Scores, err = f.Float32s(keyScores); err != nil {
			// llama.cpp also takes integer scores.
			is, ierr := f.Int32s(keyScores)
			if ierr != nil {
				return nil, fmt.Errorf("tokenizer: %s: %w", keyScores, err)
			}
			v.Scores = make([]float32, len(is))
			for i, x := range is {
				v.Scores[i] = float32(x)
			}
		}
		if len(v.Scores) < n {
			return nil, fmt.Errorf("tokenizer: %s has %d entries for %d tokens", keyScores, len(v.Scores), n)
		}
	}
	if _, ok := f.Value(keyTypes); ok {
		types, err := f.Int32s(keyTypes)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %w", keyTypes, err)
		}
		if len(types) < n {
			return nil, fmt.Errorf("tokenizer: %s has %d entries for %d tokens", keyTypes, len(types), n)
		}
		v.Types = make([]TokenType, n)
		for i := range v.Types {
			v.Types[i] = TokenType(types[i])
		}
	}

	v.BOS, v.EOS, v.EOT, v.EOM, v.UNK, v.PAD = -1, -1, -1, -1, -1, -1
	switch v.Model {
	case "llama":
		v.BOS, v.EOS, v.UNK = 1, 2, 0
		v.AddBOS, v.AddSpacePrefix = true, true
	case "gpt2":
		if v.Merges, err = f.Strings(keyMerges); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %w", keyMerges, err)
		}
		v.BOS, v.EOS = 11, 11
		if v.Pre == "" {
			v.Pre = "default"
		}
		p, ok := pretokenizers[v.Pre]
		if !ok {
			return nil, fmt.Errorf("tokenizer: unknown pre-tokenizer %q (%s); edgelm knows %s", v.Pre, keyPre, knownPretokenizers())
		}
		v.AddBOS = p.addBOS
	default:
		return nil, fmt.Errorf("tokenizer: unsupported tokenizer model %q", v.Model)
	}
	if b, ok := f.Bool(keyAddSpacePrefix); ok {
		v.AddSpacePrefix = b
	}
	for _, sp := range []struct {
		key string
		id  *int32
	}{{keyBOS, &v.BOS}, {keyEOS, &v.EOS}, {keyEOT, &v.EOT}, {keyEOM, &v.EOM}, {keyUNK, &v.UNK}, {keyPAD, &v.PAD}} {
		if *sp.id >= int32(n) {
			*sp.id = -1
		}
		if id, ok := f.Uint(sp.key); ok && id < uint64(n) {
			*sp.id = int32(id)
		}
	}
	if b, ok := f.Bool(keyAddBOS); ok {
		v.AddBOS = b
	}
	if b, ok := f.Bool(keyAddEOS); ok {
		v.AddEOS = b
	}
	return New(v)
}

// knownPretokenizers lists the tokenizer.ggml.pre names edgelm implements, sorted.
func knownPretokenizers() string {
	names := make([]string, 0, len(pretokenizers))
	for n := range pretokenizers {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
