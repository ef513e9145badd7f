package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"edgelm/client"
)

// TestStatusShowsTrouble: `edgelm status` says when the daemon is degraded, how many generations
// failed and the last error, and that the last reload failed; a healthy one says ok.
func TestStatusShowsTrouble(t *testing.T) {
	dir, err := os.MkdirTemp("", "edgelm-st")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	health := ""
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			io.WriteString(w, health)
		case "/metrics":
			io.WriteString(w, "edgelm_forbidden_total 0\n")
		}
	})}
	go srv.Serve(l)
	defer srv.Close()
	const base = `"model":"m.gguf","architecture":"llama","kernels":"avx2","threads":2,"context_length":512,"uptime_seconds":60,"kv":{"bytes":0,"budget":0,"bytes_per_token":64},"queue_depth":0,"active_sequences":0`
	for _, tc := range []struct {
		health string
		want   []string
	}{
		{`{"status":"degraded",` + base + `,"degraded":"the last generation failed: engine: forward step: mmap: fault","generation_failures":3,` +
			`"last_error":{"time":"2026-12-02T10:00:00Z","message":"engine: forward step: mmap: fault"},` +
			`"reload":{"ok":false,"time":"2026-12-02T09:00:00Z","error":"new model: mmap: open /m.gguf: no such file or directory"}}`,
			[]string{"status   DEGRADED: the last generation failed: engine: forward step: mmap: fault", "failures 3 generations failed", "reload   FAILED at", "no such file"}},
		{`{"status":"ok",` + base + `,"generation_failures":0}`, []string{"status   ok\n"}},
	} {
		health = tc.health
		c := client.New(sock)
		var out bytes.Buffer
		if err := printStatus(context.Background(), &out, c, sock); err != nil {
			t.Fatal(err)
		}
		c.Close()
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("status output lacks %q:\n%s", w, out.String())
			}
		}
	}
}
