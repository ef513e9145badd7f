package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDemoCtrlC runs scripts/demo.sh (the README's run command) on the committed demo model, then
// sends SIGINT to its process group as a terminal's Ctrl-C does: the daemon must shut down
// gracefully, not take it as a second signal and exit at once.
func TestDemoCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and serves")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("needs curl")
	}
	sock := filepath.Join(t.TempDir(), "demo.sock")
	cmd := exec.Command("bash", filepath.Join("..", "..", "scripts", "demo.sh"))
	cmd.Env = append(cmd.Environ(), "EDGELM_SOCKET="+sock)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(out.String(), "edgelm is serving"); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("demo.sh exited early (%v):\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo.sh did not start serving:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), `"object":"text_completion"`) {
		t.Errorf("no completion printed:\n%s", out.String())
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("demo.sh still running 30 s after Ctrl-C:\n%s", out.String())
	}
	if s := out.String(); strings.Contains(s, "second signal") || !strings.Contains(s, "msg=stopped") {
		t.Errorf("want a graceful shutdown (msg=stopped, no second signal):\n%s", s)
	}
}
