package faults

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"edgelm/daemon"
	"edgelm/internal/testshared"
)

// TestServiceTruncatedThenGoodFile runs the whole service (config file, file watch, model swaps)
// and truncates its model file in place. Requests must get clean errors while the file is bad
// (the failed reload leaves the old, now faulting, mapping serving) and the process must live;
// when a good file is renamed over the path, the service reloads it and well-formed requests all
// succeed again.
func TestServiceTruncatedThenGoodFile(t *testing.T) {
	s := startService(t)
	d, logs, model := s.daemonUnderTest, s.logs, s.model
	if err := d.sendWellFormed(d.client, wellFormedRequests[0]); err != nil {
		t.Fatalf("before the fault: %v", err)
	}

	if err := os.Truncate(model, int64(len(s.good)/3)); err != nil {
		t.Fatal(err)
	}
	var failed, ok int
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		r, err := d.do(http.MethodPost, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":8}`)
		switch {
		case err != nil:
			t.Fatalf("while the model file is truncated: %v", err)
		case r.status == 200:
			ok++
		case r.status >= 500 && isErrorBody(r.body):
			failed++
		default:
			t.Errorf("while the model file is truncated: %d %s", r.status, r.body)
		}
	}
	t.Logf("while truncated: %d requests failed cleanly, %d succeeded", failed, ok)
	if failed == 0 {
		t.Error("no request failed while the model file was truncated: the fault was not exercised")
	}
	if r, err := d.do(http.MethodGet, "/health", ""); err != nil || r.status != 200 {
		t.Errorf("/health while truncated: %v %d %s", err, r.status, r.body)
	}

	// A good file arrives the way the docs say to install one: written aside, renamed over.
	s.installModel()
	waitFor(t, 20*time.Second, "a request to succeed after the good file returned", func() bool {
		return d.sendWellFormed(d.client, wellFormedRequests[0]) == nil
	})
	stop := d.alongside(2)
	time.Sleep(300 * time.Millisecond)
	n := stop()
	t.Logf("after the good file returned: %d well-formed requests succeeded", n)
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") || strings.Contains(line, "swap") {
			t.Logf("service log: %.200s", line)
		}
	}
}

// serviceUnderTest is the whole service (daemon.NewService with a config file) serving a copy of
// the shared model from a temporary directory; it is stopped with SIGTERM at the test's end.
type serviceUnderTest struct {
	*daemonUnderTest        // its model and good are the served file and its bytes
	dir, conf        string // the temporary directory and the config file in it
	confText         []byte // the config file's good contents
}

func startService(t *testing.T) *serviceUnderTest {
	src := filepath.Join(testshared.Dir(t), "models", modelName)
	good, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "edgelm-svc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &daemonUnderTest{t: t, model: filepath.Join(dir, "model.gguf"), good: good, socket: filepath.Join(dir, "d.sock")}
	s := &serviceUnderTest{daemonUnderTest: d, dir: dir, conf: filepath.Join(dir, "edgelm.toml"),
		confText: []byte("model = \"model.gguf\"\nsocket = \"d.sock\"\nthreads = 1\nchat_template = \"chatml\"\n")}
	if err := os.WriteFile(s.model, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.conf, s.confText, 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	sigs := make(chan os.Signal, 1)
	svc, err := daemon.NewService(daemon.ServiceOptions{ConfigPath: s.conf, LogOutput: logs, Signals: sigs, Exit: func(int) {}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background()) }()
	t.Cleanup(func() {
		sigs <- syscall.SIGTERM
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("service log:\n%s", tail(logs.String(), 40))
		}
	})
	d.logs = logs
	d.client = d.newClient()
	waitFor(t, 20*time.Second, "the service to serve", func() bool {
		r, err := d.do(http.MethodGet, "/health", "")
		return err == nil && r.status == 200
	})
	return s
}

// installModel puts a good model file in place the way the docs say to install one: written
// aside, then renamed over the served path.
func (s *serviceUnderTest) installModel() {
	tmp := filepath.Join(s.dir, "model.gguf.new")
	if err := os.WriteFile(tmp, s.good, 0o644); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, s.model); err != nil {
		s.t.Fatal(err)
	}
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServiceGarbageConfigMidLoad replaces the config file with random bytes while requests run,
// once on its own and once while a model swap (triggered by renaming a new model file into
// place) is loading. The service must log the failed reload, keep serving with the old
// configuration, report the failure on /health, and every well-formed request must succeed.
func TestServiceGarbageConfigMidLoad(t *testing.T) {
	s := startService(t)
	d, logs, conf := s.daemonUnderTest, s.logs, s.conf
	stop := d.alongside(3)
	failures := func() int { return strings.Count(logs.String(), "reload failed") }

	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(i*7919 + i/13) // deterministic noise with NULs and invalid UTF-8
	}
	if err := os.WriteFile(conf, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the failed reload of a garbage config", func() bool { return failures() >= 1 })
	r, err := d.do(http.MethodGet, "/health", "")
	if err != nil || r.status != 200 || !strings.Contains(string(r.body), `"ok":false`) {
		t.Errorf("/health after a garbage config: %v %d %s", err, r.status, r.body)
	}

	// Good config back, then a model swap with garbage written while the new model loads.
	if err := os.WriteFile(conf, s.confText, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "recovery", func() bool {
		r, err := d.do(http.MethodGet, "/health", "")
		return err == nil && strings.Contains(string(r.body), `"ok":true`)
	})
	before := failures()
	s.installModel()
	if err := os.WriteFile(conf, garbage[:1000], 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the failed reload during the swap", func() bool { return failures() > before })
	time.Sleep(300 * time.Millisecond)
	n := stop()
	t.Logf("%d well-formed requests succeeded across two garbage configs, one during a model swap (%d failed reloads logged)", n, failures())
}
