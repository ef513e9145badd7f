package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"edgelm/internal/testshared"
)

// buildEdgelm compiles this command into dir.
func buildEdgelm(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "edgelm")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// notifications is a fake systemd notify socket.
type notifications struct {
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T, path string) *notifications {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	n := &notifications{}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	return n
}

// wait returns once count messages start with prefix.
func (n *notifications) wait(t *testing.T, prefix string, count int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n.mu.Lock()
		k := 0
		for _, m := range n.msgs {
			if strings.HasPrefix(m, prefix) {
				k++
			}
		}
		n.mu.Unlock()
		if k >= count {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	t.Fatalf("fewer than %d %q notifications; got %q", count, prefix, n.msgs)
}

// TestServeSocketActivated starts `edgelm serve` the way edgelm.socket does, through
// systemd-socket-activate on a socket path: the first connection starts the daemon, which
// answers it on the inherited socket, tells the (fake) service manager READY=1, reloads on SIGHUP
// and on a config edit (RELOADING=1, READY=1), and exits 0 on SIGTERM after STOPPING=1.
func TestServeSocketActivated(t *testing.T) {
	activate, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not installed (Debian: apt-get install systemd)")
	}
	shared := testshared.Dir(t)
	model := testshared.Path(t, "models", "aidreams260K-q8_0.gguf")
	var golden struct {
		Prompt string `json:"prompt"`
		Text   string `json:"text"`
	}
	b, err := os.ReadFile(filepath.Join(shared, "golden", "aidreams260K-q8_0.p1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &golden); err != nil {
		t.Fatal(err)
	}

	dir, err := os.MkdirTemp("", "edgelm-sa") // short: socket paths are limited to 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := buildEdgelm(t, dir)
	sock := filepath.Join(dir, "api.sock")
	conf := filepath.Join(dir, "edgelm.toml")
	writeConf := func(temp string) {
		text := "model = \"" + model + "\"\nsocket = \"unused.sock\"\nlog_level = \"debug\"\nsampling.temperature = " + temp + "\n" +
			"kv_type_k = \"f32\"\nkv_type_v = \"f32\"\n" // compared with llama.cpp's f32-cache reference
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("0")
	notify := listenNotify(t, filepath.Join(dir, "notify"))

	// systemd-socket-activate hands the daemon only the variables named with -E.
	cmd := exec.Command(activate, "-l", sock, "-E", "NOTIFY_SOCKET="+filepath.Join(dir, "notify"), bin, "serve", "--config", conf)
	var logs strings.Builder
	var logMu sync.Mutex
	cmd.Stdout = io.Discard
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				t.Error("the daemon's stderr is still open after it was killed")
			}
		}
		if t.Failed() {
			logMu.Lock()
			t.Logf("daemon log:\n%s", logs.String())
			logMu.Unlock()
		}
	}()

	// systemd-socket-activate binds the socket, then execs the daemon on the first connection.
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("systemd-socket-activate did not create the socket")
		}
		time.Sleep(10 * time.Millisecond)
	}
	complete := func() (int, string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"prompt": golden.Prompt, "max_tokens": 8})
		resp, err := client.Post("http://edgelm/v1/completions", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatalf("completion: %v", err)
		}
		defer resp.Body.Close()
		var out struct {
			Model   string                  `json:"model"`
			Choices []struct{ Text string } `json:"choices"`
		}
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &out); err != nil || len(out.Choices) != 1 {
			t.Fatalf("answer %d %s: %v", resp.StatusCode, b, err)
		}
		return resp.StatusCode, out.Choices[0].Text
	}

	// The very first request starts the daemon and waits for the model instead of getting 503.
	code, text := complete()
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	// Greedy (temperature 0 from the config): the start of llama.cpp's continuation.
	if text == "" || !strings.HasPrefix(golden.Text, text) {
		t.Errorf("completion %q is not a prefix of the reference %q", text, golden.Text)
	}
	notify.wait(t, "READY=1", 1)
	notify.wait(t, "STATUS=serving aidreams260K-q8_0.gguf", 1)

	cmd.Process.Signal(syscall.SIGHUP)
	notify.wait(t, "RELOADING=1\nMONOTONIC_USEC=", 1)
	notify.wait(t, "READY=1", 2)

	writeConf("0.7")
	notify.wait(t, "RELOADING=1\nMONOTONIC_USEC=", 2)
	notify.wait(t, "READY=1", 3)
	resp, err := client.Get("http://edgelm/health")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Status string `json:"status"`
		Reload struct {
			OK bool `json:"ok"`
		} `json:"reload"`
	}
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if health.Status != "ok" || !health.Reload.OK {
		t.Errorf("/health after reloads: %+v", health)
	}
	if code, _ := complete(); code != http.StatusOK {
		t.Errorf("after reload: status %d", code)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("daemon exit: %v, want status 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not exit after SIGTERM")
	}
	notify.wait(t, "STOPPING=1", 1)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestServeCheckConfig(t *testing.T) {
	model := testshared.Path(t, "models", "aidreams260K-q4_0.gguf")
	dir := t.TempDir()
	conf := filepath.Join(dir, "edgelm.toml")
	for _, tc := range []struct {
		conf  string
		flags []string
		code  int
		want  string // in stderr
	}{
		{"model = \"" + model + "\"\n", nil, 0, ""},
		{"model = \"" + model + "\"\nthread = 2\n", nil, 1, `edgelm.toml: line 2: unknown key "thread" (did you mean "threads"?)`},
		{"model = \"missing.gguf\"\n", nil, 1, "no such file"},
		{"model = \"missing.gguf\"\n", []string{"--model", model}, 0, ""}, // the flag wins
		{"model = \"" + model + "\"\n", []string{"--threads", "-1"}, 1, `key "threads": -1 is outside 0..1024`},
	} {
		if err := os.WriteFile(conf, []byte(tc.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		args := append([]string{"serve", "--config", conf, "--check-config"}, tc.flags...)
		code := runMain(args, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q %v: exit %d, stderr %q; want exit %d and %q", tc.conf, tc.flags, code, stderr.String(), tc.code, tc.want)
		}
	}
}
