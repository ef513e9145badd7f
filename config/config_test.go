package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

const examplePath = "../configs/edgelm.toml"

// The shipped example must be exactly the defaults, so the documentation cannot drift.
func TestExampleIsDefaults(t *testing.T) {
	c, err := Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if want := Defaults(); !reflect.DeepEqual(*c, want) {
		t.Errorf("configs/edgelm.toml differs from Defaults():\n got %+v\nwant %+v", *c, want)
	}
}

// Every key is in the example, on a line "leaf = default" inside the right table.
func TestExampleListsEveryKeyWithDefault(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Split(string(data), "\n")
	lines := keyLines(string(data))
	for _, k := range Keys() {
		n, ok := lines[k.Name]
		if !ok {
			t.Errorf("key %q missing from %s", k.Name, examplePath)
			continue
		}
		leaf := k.Name[strings.LastIndexByte(k.Name, '.')+1:]
		got := strings.TrimSpace(text[n-1])
		if want := leaf + " = " + k.Default; got != want && got != leaf+" = 1.0" {
			t.Errorf("line %d: %q, want %q", n, got, want)
		}
	}
	if len(lines) != len(Keys())+2 { // + [limits], [sampling]
		t.Errorf("example defines %d keys and tables, want %d", len(lines), len(Keys())+2)
	}
}

func TestDocListsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, k := range Keys() {
		row := "| `" + k.Name + "` | " + k.Type + " | `" + k.Default + "` | " + k.Reload.String() + " |"
		if !strings.Contains(doc, row) {
			t.Errorf("docs/configuration.md lacks the row\n%s", row)
		}
	}
}

func TestParseValues(t *testing.T) {
	src := `
model = "models/tiny.gguf"
socket = "/tmp/e.sock"
socket_mode = 0o600
allowed_uids = [1000, 1001]
threads = 2
kv_type_k = "q8_0"
kv_budget = "256MiB"
shutdown_grace = "1m30s"

[limits]
max_body_bytes = 4096
request_timeout = "0s"

[sampling]
temperature = 0
top_p = 1
`
	c, err := Parse([]byte(src), "/etc/edgelm")
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Model = "/etc/edgelm/models/tiny.gguf"
	want.Socket = "/tmp/e.sock"
	want.SocketMode = 0o600
	want.AllowedUIDs = []uint32{1000, 1001}
	want.Threads = 2
	want.KVTypeK = "q8_0"
	want.KVBudget = 256 << 20
	want.ShutdownGrace = 90 * time.Second
	want.Limits.MaxBodyBytes = 4096
	want.Limits.RequestTimeout = 0
	want.Sampling.Temperature = 0
	want.Sampling.TopP = 1
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got  %+v\nwant %+v", *c, want)
	}
}

func TestErrorsHaveLines(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // one per error, in order
	}{
		{"unknown key", "threads = 1\nthread = 2\n", []string{`config: line 2: unknown key "thread" (did you mean "threads"?)`}},
		{"unknown in table", "[limits]\n\nmax_token = 5\n", []string{`config: line 3: unknown key "limits.max_token" (did you mean "limits.max_tokens"?)`}},
		{"unknown table", "[limit]\nmax_tokens = 5\n", []string{`config: line 1: unknown key "limit" (did you mean "limits"?)`}},
		{"wrong type", "# c\nthreads = \"four\"\n", []string{`config: line 2: key "threads": want an integer, got string "four"`}},
		{"wrong type in table", "[sampling]\ntop_k = 4.5\n", []string{`config: line 2: key "sampling.top_k": want an integer, got float 4.5`}},
		{"table not value", "limits = 3\n", []string{`config: line 1: key "limits": want a table ([limits]), got integer 3`}},
		{"value not table", "[threads]\nx = 1\n", []string{`config: line 1: key "threads": want an integer, got a table`}},
		{"bad size", "kv_budget = \"12M\"\n", []string{`config: line 1: key "kv_budget": size "12M": want a number of bytes or a number with a unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB), e.g. "256MiB"`}},
		{"bad duration", "\n\nshutdown_grace = 30\n", []string{`config: line 3: key "shutdown_grace": want a duration string such as "30s" or "5m", got integer 30`}},
		{"bad mode", "socket_mode = 660\n", []string{`config: line 1: key "socket_mode": mode 01224 has bits outside 0777 (write it as the string "0660" or 0o660)`}},
		{"syntax", "threads = 1\nmodel = \"x\n", nil}, // message from the toml package; line checked below
		{"range", "max_sequences = 0\n[sampling]\ntop_p = 1.5\n", []string{
			`config: line 1: key "max_sequences": 0 is outside 1..1024`,
			`config: line 3: key "sampling.top_p": 1.5 is outside 0..1`,
		}},
		{"kv type", "kv_type_v = \"q5_1\"\n", []string{`config: line 1: key "kv_type_v": "q5_1" is not one of f32, f16, q8_0, q4_0`}},
		{"log level", "log_level = \"verbose\"\n", []string{`config: line 1: key "log_level": "verbose" is not one of debug, info, warn, error`}},
		{"tcp", "tcp_listen = \"8080\"\n", []string{`config: line 1: key "tcp_listen": want "host:port" such as "127.0.0.1:8080": address 8080: missing port in address`}},
		{"uid range", "allowed_uids = [1000, -1]\n", []string{`config: line 1: key "allowed_uids": id -1 is out of range 0..4294967294`}},
		{"uid type", "allowed_gids = [\"adm\"]\n", []string{`config: line 1: key "allowed_gids": want a list of integers, got an element string "adm"`}},
		{"empty model", "model = \"\"\n", []string{`config: line 1: key "model": a model path is required`}},
		{"inline table", "limits = { max_tokens = \"x\" }\n", []string{`config: line 1: key "limits.max_tokens": want an integer, got string "x"`}},
		{"multi-line string", "chat_template = \"\"\"\nthread = 1\n\"\"\"\nthread = 2\n", []string{`config: line 4: unknown key "thread" (did you mean "threads"?)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "/")
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want == nil {
				var ce *Error
				if !errors.As(err, &ce) || ce.Line != 2 {
					t.Fatalf("want a *Error on line 2, got %v", err)
				}
				return
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", err, strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestLoadNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.toml")
	if err := os.WriteFile(path, []byte("model = \"m.gguf\"\n\nthread = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := "config: " + path + `: line 3: unknown key "thread" (did you mean "threads"?)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if err := os.WriteFile(path, []byte("model = \"m.gguf\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(path), "m.gguf"); c.Model != want {
		t.Errorf("model %q, want %q", c.Model, want)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.toml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Size
	}{
		{"0", 0}, {"4096", 4096}, {"4096B", 4096}, {"1KiB", 1024}, {"1kb", 1000},
		{"256MiB", 256 << 20}, {"256 MiB", 256 << 20}, {"1GB", 1e9}, {"1.5GiB", 3 << 29}, {"2TiB", 2 << 40},
	} {
		got, err := ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "12M", "1G", "-1", "-1MiB", "x", "1e400GiB", "9999999999TiB", "NaN"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
	for _, tc := range []struct {
		in   Size
		want string
	}{{0, "0"}, {1000, "1000"}, {1024, "1KiB"}, {256 << 20, "256MiB"}, {3 << 29, "1536MiB"}} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tc.in), got, tc.want)
		}
	}
}

func TestChanges(t *testing.T) {
	a, b := Defaults(), Defaults()
	if ch := Changes(&a, &b); len(ch) != 0 {
		t.Errorf("identical configs: %v", ch)
	}
	b.Socket = "/tmp/x.sock"
	b.Sampling.TopK = 5
	b.Model = "/m2.gguf"
	b.AllowedGIDs = []uint32{} // empty and nil are the same
	want := []Change{{"model", Swap}, {"socket", Restart}, {"sampling.top_k", Live}}
	if got := Changes(&a, &b); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestValidateAfterFlags(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Threads = -1
	c.Socket = "/" + strings.Repeat("s", 120)
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), `key "socket"`) || !strings.Contains(err.Error(), `key "threads"`) {
		t.Errorf("got %v", err)
	}
}

// A config path that is a FIFO must fail at once, not block start-up or a reload in open or read.
func TestLoadRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "edgelm.toml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := Load(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "FIFO") {
			t.Fatalf("Load(FIFO) = %v, want an error naming the FIFO", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Load blocked on a FIFO")
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("Load(directory) = %v, want an error naming the directory", err)
	}
}
