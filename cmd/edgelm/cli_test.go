package main

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		var out, errb bytes.Buffer
		stdout = &out
		code := runMain([]string{arg}, &errb)
		stdout = os.Stdout
		if code != 0 || !strings.HasPrefix(out.String(), "edgelm ") || !strings.Contains(out.String(), " revision ") ||
			!strings.Contains(out.String(), runtime.Version()) || strings.Count(out.String(), "\n") != 1 {
			t.Errorf("edgelm %s: exit %d, stdout %q, stderr %q; want one line with the version and revision", arg, code, out.String(), errb.String())
		}
	}
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261202180623-3f5a3ed4ba45+dirty"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "3f5a3ed4ba458624b681486b4f22af84a42395b1"},
		{Key: "vcs.time", Value: "2026-12-02T18:06:23Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	got := versionLine(bi)
	for _, want := range []string{"edgelm v0.0.0-20261202180623-3f5a3ed4ba45+dirty ", "revision 3f5a3ed4ba458624b681486b4f22af84a42395b1 (modified) 2026-12-02T18:06:23Z"} {
		if !strings.Contains(got, want) {
			t.Errorf("versionLine = %q, want it to contain %q", got, want)
		}
	}
}

// TestFlagMistakes: a mistyped flag gives one line naming it, the closest real flag and where to
// look, not the flag package's whole listing.
func TestFlagMistakes(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--tempreature", "1"}, []string{"unknown flag --tempreature", "did you mean --temperature?", "see edgelm run --help"}},
		{[]string{"run", "-max-token", "3"}, []string{"unknown flag --max-token", "--max-tokens?"}},
		{[]string{"serve", "--xyzzy"}, []string{"unknown flag --xyzzy", "see edgelm serve --help"}},
		{[]string{"bench", "-n", "many"}, []string{`invalid value "many"`, "see edgelm bench --help"}},
		{[]string{"status", "--socket"}, []string{"needs an argument", "see edgelm status --help"}},
		{[]string{"rn"}, []string{`unknown command "rn"`, "did you mean run?"}},
	} {
		var errb bytes.Buffer
		code := runMain(c.args, &errb)
		got := errb.String()
		if code != 2 || strings.Count(got, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and one line", c.args, code, got)
		}
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%q: stderr %q, want it to contain %q", c.args, got, w)
			}
		}
		if strings.Contains(got, "did you mean") && strings.Contains(got, "xyzzy") {
			t.Errorf("%q: %q suggests a flag that is not close", c.args, got)
		}
	}
}
