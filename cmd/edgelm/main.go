// Command edgelm runs quantized language models from GGUF files: one-shot (run), as a daemon on a
// Unix socket (serve), and the tools around them (info, tokenize, bench, quantize, chat).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
)

// A command is one subcommand. Each lives in its own file and registers itself in init.
type command struct {
	summary string
	run     func(args []string) error
}

var commands = map[string]command{}

func register(name, summary string, run func(args []string) error) {
	commands[name] = command{summary: summary, run: run}
}

// errUsage marks an error whose message is a usage problem: exit status 2.
var errUsage = errors.New("usage")

// stdout is where edgelm version writes; tests replace it.
var stdout io.Writer = os.Stdout

func main() {
	os.Exit(runMain(os.Args[1:], os.Stderr))
}

func runMain(args []string, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version" || args[0] == "version") {
		bi, _ := debug.ReadBuildInfo()
		fmt.Fprintln(stdout, versionLine(bi))
		return 0
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		names := make([]string, 0, len(commands))
		for n := range commands {
			names = append(names, n)
		}
		fmt.Fprintf(stderr, "edgelm: unknown command %q%s; see edgelm --help\n", args[0], didYouMean(args[0], names, ""))
		return 2
	}
	if err := c.run(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "edgelm %s: %v\n", args[0], err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: edgelm <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "  %-10s %s\n", "version", "print the version and the source revision it was built from")
	fmt.Fprintln(w, "\nRun 'edgelm <command> -h' for a command's flags.")
}

// newFlags makes a FlagSet for a subcommand whose parse errors are returned, not fatal.
func newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("edgelm "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: edgelm %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// usageError is a command-line mistake told in one line; it is errUsage (exit status 2).
type usageError string

func (e usageError) Error() string        { return string(e) }
func (e usageError) Is(target error) bool { return target == errUsage }

// parseFlags parses args like fs.Parse, but a mistake gives one line naming the flag, the closest
// real one and where to look, instead of the flag package's whole usage listing; -h still prints it.
func parseFlags(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if err == nil {
		return nil
	}
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return err
	}
	see := "; see " + fs.Name() + " --help"
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		var known []string
		fs.VisitAll(func(f *flag.Flag) { known = append(known, f.Name) })
		return usageError(fmt.Sprintf("unknown flag --%s%s%s", name, didYouMean(name, known, "--"), see))
	}
	return usageError(msg + see)
}

// didYouMean names the closest of candidates to s, when one is close enough to be a likely typo.
func didYouMean(s string, candidates []string, prefix string) string {
	best, bestD := "", len(s)/2+2 // more edits than that is a different word, not a typo
	for _, c := range candidates {
		d := editDistance(s, c)
		if strings.HasPrefix(c, s) && len(s) >= 2 {
			d = min(d, 1) // an abbreviation
		}
		if d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s%s?)", prefix, best)
}

// editDistance is the Levenshtein distance between a and b, counting bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// versionLine is the module version and the VCS revision the binary was built from, as the Go
// toolchain stamped them (go build in a git clone; "unknown" with -buildvcs=false, in a git
// worktree, or under go test).
func versionLine(bi *debug.BuildInfo) string {
	version, rev, when, dirty := "(devel)", "unknown", "", false
	if bi != nil {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	line := "edgelm " + version + " revision " + rev
	if dirty {
		line += " (modified)"
	}
	if when != "" {
		line += " " + when
	}
	return line + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}
