#!/usr/bin/env python3
"""Writes pretok_golden.json: how each pre-tokenizer's published regular expressions
split a set of strings, computed with Python's `regex` module (which has \\p{..}
classes and lookahead), as an oracle independent of the Go scanners.

Each pre-tokenizer is a list of expressions applied in turn, every one to each piece
the previous left, keeping both matches and the text between them (Hugging Face's
Split(..., "isolated") and llama.cpp's unicode_regex_split).

Usage: python3 gen_pretok.py ../../../shared/vocab/*.inp > pretok_golden.json
"""
import json
import sys

import regex

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
CJK = r"[一-龥ࠀ-一가-퟿]+"
# DeepSeek LLM's letter class: the cased letters, written as code point ranges so that
# no Unicode normalisation of this file can change them.
DS_LETTERS = [(0x41, 0x5A), (0x61, 0x7A), (0xB5, 0xB5), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x1BA),
    (0x1BC, 0x1BF), (0x1C4, 0x293), (0x295, 0x2AF), (0x370, 0x373), (0x376, 0x377), (0x37B, 0x37D),
    (0x37F, 0x37F), (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x3F5),
    (0x3F7, 0x481), (0x48A, 0x52F), (0x531, 0x556), (0x10A0, 0x10C5), (0x13A0, 0x13F5), (0x13F8, 0x13FD),
    (0x1C90, 0x1CBA), (0x1CBD, 0x1CBF), (0x1D00, 0x1D2B), (0x1D6B, 0x1D77), (0x1D79, 0x1D9A), (0x1E00, 0x1F15),
    (0x1F18, 0x1F1D), (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B),
    (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4),
    (0x1FC6, 0x1FCC), (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC),
    (0x2102, 0x2102), (0x2107, 0x2107), (0x210A, 0x2113), (0x2115, 0x2115), (0x2119, 0x211D), (0x2124, 0x2124),
    (0x2126, 0x2126), (0x2128, 0x2128), (0x212A, 0x212D), (0x212F, 0x2134), (0x2139, 0x2139), (0x213C, 0x213F),
    (0x2145, 0x2149), (0x214E, 0x214E), (0x2183, 0x2184), (0x2C00, 0x2C7B), (0x2C7E, 0x2CE4), (0x2CEB, 0x2CEE),
    (0x2CF2, 0x2CF3), (0xA640, 0xA66D), (0xA680, 0xA69B), (0xA722, 0xA76F), (0xA771, 0xA787), (0xA78B, 0xA78E),
    (0xAB70, 0xABBF), (0xFB00, 0xFB06), (0xFB13, 0xFB17), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A), (0x10400, 0x1044F),
    (0x104B0, 0x104D3), (0x104D8, 0x104FB), (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2), (0x118A0, 0x118DF),
    (0x1E900, 0x1E943)]
DS_LETTER_CLASS = "[" + "".join("\\U%08X-\\U%08X" % r for r in DS_LETTERS) + "]"

PRE = {
    "gpt-2": [GPT2],
    "llama-bpe": [LLAMA3],
    "qwen2": [QWEN2],
    "starcoder": [r"\p{N}", GPT2],
    "default": [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
    "falcon": [r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"],
    "deepseek-coder": [r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", CJK, r"\p{N}"],
    "deepseek-llm": [r"[\r\n]", r"\s?" + DS_LETTER_CLASS + "+", r"\s?[!-/:-~！-／：-～‘-‟　-。]+", r"\s+\Z", CJK, r"\p{N}+"],
}

EXTRA = [
    "I'M here, you'RE there; we'Ve done it. He'LL go, she'D say, it'S fine, don'T",
    "12345678901 1.5e10 ¼ ½ ٣٤٥ 一二三 Ⅻ",
    "a\r\nb\n\r\nc \r\n d\t\n\te  \n  f",
    "  leading and trailing  ",
    "x!!\n\n(y) [z] {w} <v> a+b=c d^e f|g h~i j`k l$m",
    "naïve café Straße ΑΒΓ αβγ Привет мир שלום مرحبا नमस्ते",
    "日本語のテキスト、中文文本。한국어 텍스트",
    "emoji 😀😃 mixed👍text",
    "def f(x):\n    return x**2  # comment\n",
    "'s's 'S'S ''' \"quoted\" 'apostrophe'",
    "\u00a0nbsp\u2009thin\u3000ideo",
    "tabs\t\tand\vvertical\fform",
    "",
    " ",
    "\n",
]


def split(pre, text):
    pieces = [text]
    for expr in PRE[pre]:
        out = []
        for p in pieces:
            pos = 0
            for m in regex.finditer(expr, p):
                if m.start() > pos:
                    out.append(p[pos:m.start()])
                if m.end() > m.start():
                    out.append(m.group())
                pos = m.end()
            if pos < len(p):
                out.append(p[pos:])
        pieces = out
    return pieces


def main():
    texts = []
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            texts += f.read().split("\n__ggml_vocab_test__\n")[:-1]
    texts += EXTRA
    seen, uniq = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            uniq.append(t)
    golden = {pre: [[t, split(pre, t)] for t in uniq] for pre in PRE}
    json.dump(golden, sys.stdout, ensure_ascii=False, indent=0)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
