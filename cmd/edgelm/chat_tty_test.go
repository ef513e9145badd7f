package main

import (
	"bytes"
	"encoding/json"
	"fmt"
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

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the test types into master, the program reads slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pts: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	// A new pseudo-terminal is 0 columns wide, which no line editor expects of a terminal.
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80}); err != nil {
		t.Skipf("window size: %v", err)
	}
	return m, s
}

// fakeChatDaemon answers /health and streams /v1/chat/completions: "ok:" and the last user
// message, or for "slow" a chunk every 20 ms until the client goes away.
type fakeChatDaemon struct {
	mu        sync.Mutex
	got       []string // the last user message of each request
	streaming bool     // a "slow" reply has started
	cancelled bool     // and its client went away
}

func (f *fakeChatDaemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		fmt.Fprint(w, `{"status":"ok","model":"fake.gguf","architecture":"llama","chat_template":"chatml"}`)
		return
	}
	var body struct {
		Messages []struct{ Role, Content string } `json:"messages"`
	}
	json.NewDecoder(r.Body).Decode(&body)
	last := body.Messages[len(body.Messages)-1].Content
	f.mu.Lock()
	f.got = append(f.got, last)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	chunk := func(s string) {
		b, _ := json.Marshal(s)
		fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":%s}}]}\n\n", b)
		w.(http.Flusher).Flush()
	}
	if last == "slow" {
		for range 500 {
			chunk(" word")
			f.mu.Lock()
			f.streaming = true
			f.mu.Unlock()
			select {
			case <-r.Context().Done():
				f.mu.Lock()
				f.cancelled = true
				f.mu.Unlock()
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	chunk("ok:" + last)
	fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}\n\ndata: [DONE]\n\n")
}

// TestChatTerminal drives edgelm chat through a pseudo-terminal: arrow keys edit the line and
// recall the last one (instead of reaching the model as escape codes), and Ctrl-C during a reply
// stops that reply quietly while the chat goes on.
func TestChatTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildEdgelm(t, dir)
	sock := filepath.Join(dir, "d.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeChatDaemon{}
	srv := &http.Server{Handler: fake}
	go srv.Serve(ln)
	defer srv.Close()

	master, slave := openPTY(t)
	cmd := exec.Command(bin, "chat", "--socket", sock)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var mu sync.Mutex
	var screen bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			fake.mu.Lock()
			ok := cond()
			fake.mu.Unlock()
			mu.Unlock()
			if ok {
				return
			}
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("timed out waiting for %s; the terminal shows:\n%s", what, screen.String())
	}
	prompts := func(n int) func() bool { return func() bool { return strings.Count(screen.String(), "> ") >= n } }
	typeKeys := func(keys ...string) { // one key (or escape sequence) at a time, as typed
		t.Helper()
		for _, k := range keys {
			if _, err := master.WriteString(k); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	waitFor("the first prompt", prompts(1))
	typeKeys("hello", "\x1b[D", "X", "\r") // left arrow, then X before the last letter
	waitFor("the edited line's reply", func() bool { return strings.Contains(screen.String(), "ok:hellXo") })
	waitFor("the second prompt", prompts(2))
	typeKeys("\x1b[A", "\r") // up arrow: the line before, again
	waitFor("the recalled line's reply", func() bool { return len(fake.got) == 2 })
	waitFor("the third prompt", prompts(3))
	typeKeys("slow\r")
	waitFor("a long reply to start", func() bool { return fake.streaming })
	typeKeys("\x03") // Ctrl-C
	waitFor("the reply to stop", func() bool { return fake.cancelled && strings.Contains(screen.String(), "(stopped)") })
	waitFor("a prompt after the stopped reply", prompts(4))
	typeKeys("after\r")
	waitFor("the chat to go on", func() bool { return strings.Contains(screen.String(), "ok:after") })
	typeKeys("/quit\r")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("chat exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("chat did not exit on /quit")
	}
	mu.Lock()
	defer mu.Unlock()
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fmt.Sprint(fake.got) != "[hellXo hellXo slow after]" {
		t.Errorf("the daemon got %q; want the edited line, it again, slow, after", fake.got)
	}
	if s := screen.String(); strings.Contains(s, "error") || strings.Contains(s, "\x1b[A") && strings.Contains(s, "ok:\x1b") {
		t.Errorf("the terminal shows an error or raw escape codes reached the model:\n%s", s)
	}
}
