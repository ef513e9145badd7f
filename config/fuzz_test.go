package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse as a TOML config. Nothing may panic; a refusal is
// made only of *Error values whose messages start with "config: " and say something; an accepted
// config passes Validate (Parse checks what Validate checks) and parses the same way twice.
//
// The committed corpus (testdata/fuzz/FuzzParse) holds the shipped example, every table with a
// wrong type, unterminated strings, duplicate keys and regressions from earlier fuzzing.
func FuzzParse(f *testing.F) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatalf("seed: %v", err)
	}
	f.Add(data)
	f.Add([]byte("[limits]\nmax_tokens = 5\nx = \"\"\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "/etc")
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config and an error %v", err)
			}
			checkErrors(t, err)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config Validate refuses: %v", err)
		}
		again, err := Parse(data, "/etc")
		if err != nil || again == nil {
			t.Fatalf("second Parse of an accepted config failed: %v", err)
		}
		if Changes(c, again) != nil {
			t.Fatalf("two Parses of one input differ: %v", Changes(c, again))
		}
	})
}

// checkErrors asserts that err is one *Error or a join of them, each a non-empty "config: "
// message, so an operator always sees which key or line is at fault.
func checkErrors(t *testing.T, err error) {
	t.Helper()
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	if len(errs) == 0 {
		t.Fatalf("empty error join %v", err)
	}
	for _, e := range errs {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("error %q (%T) is not a *config.Error", e, e)
		}
		if msg := e.Error(); !strings.HasPrefix(msg, "config: ") || strings.TrimSpace(ce.Msg) == "" {
			t.Fatalf("bad error message %q", msg)
		}
	}
}
