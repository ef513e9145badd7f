package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"edgelm/gguf"
	"edgelm/tokenizer"
)

func init() {
	register("tokenize", "print the token ids of a text (space separated)", func(args []string) error {
		return tokenizeCmd(args, os.Stdout)
	})
}

func tokenizeCmd(args []string, stdout io.Writer) error {
	fs := newFlags("tokenize", "--model FILE --text TEXT [--bos] [--special] [--pieces]")
	modelPath := fs.String("model", "", "GGUF file with a tokenizer (a vocab-only file is enough)")
	text := fs.String("text", "", "text to tokenize")
	file := fs.String("file", "", "read the text from this file (- for stdin)")
	bos := fs.Bool("bos", false, "add BOS first when the model uses one")
	special := fs.Bool("special", false, "parse special-token texts as their ids")
	pieces := fs.Bool("pieces", false, "print id and piece, one per line")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *modelPath == "" {
		return fmt.Errorf("%w: --model FILE is required", errUsage)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["text"] && !given["file"] {
		// As /v1/tokenize without content: tokenizing nothing by mistake is not an answer.
		return usageError("no text: give --text TEXT or --file FILE (- for stdin)")
	}
	in := *text
	if *file != "" {
		var b []byte
		var err error
		if *file == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(*file)
		}
		if err != nil {
			return err
		}
		in = string(b)
	}
	f, err := gguf.Open(*modelPath)
	if err != nil {
		return err
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return fmt.Errorf("%s: %w", *modelPath, err)
	}
	ids := tok.Encode(in, *bos && tok.AddBOS(), *special)
	if *pieces {
		for _, id := range ids {
			fmt.Fprintf(stdout, "%6d %q\n", id, tok.Piece(id))
		}
		return nil
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	_, err = fmt.Fprintln(stdout, strings.Join(s, " "))
	return err
}
