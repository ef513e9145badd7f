package daemon

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestListenModeAndGroup(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "m.sock")
	l, err := Listen(Settings{Socket: path, SocketGroup: strconv.Itoa(os.Getgid())})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want a socket with 0660", st.Mode())
	}
	if gid := st.Sys().(*syscall.Stat_t).Gid; int(gid) != os.Getgid() {
		t.Errorf("socket group %d, want %d", gid, os.Getgid())
	}
	l2, err := Listen(Settings{Socket: filepath.Join(shortTempDir(t), "m2.sock"), SocketMode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if st, _ := os.Stat(l2.Addr().String()); st.Mode().Perm() != 0o600 {
		t.Errorf("configured mode: %v", st.Mode())
	}
	if _, err := Listen(Settings{Socket: filepath.Join(shortTempDir(t), "g.sock"), SocketGroup: "no-such-group-edgelm"}); err == nil {
		t.Error("unknown group accepted")
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "s.sock")
	// A crashed daemon leaves its socket file behind: nobody accepts on it.
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	l, err := Listen(Settings{Socket: path})
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("new socket does not accept: %v", err)
	}
	c.Close()
	l.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("Close left the socket file: %v", err)
	}
}

func TestListenDoesNotStealLiveSocket(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "l.sock")
	// Another process (here: a plain listener, no lock file) serves the path.
	other, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = Listen(Settings{Socket: path})
	if err == nil || !strings.Contains(err.Error(), "socket "+path+" is in use by another process") {
		t.Fatalf("Listen on a live socket: %v", err)
	}
	if c, err := net.Dial("unix", path); err != nil {
		t.Errorf("the live socket was disturbed: %v", err)
	} else {
		c.Close()
	}
	// Another edgelm holding the lock.
	path2 := filepath.Join(shortTempDir(t), "l2.sock")
	first, err := Listen(Settings{Socket: path2})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := Listen(Settings{Socket: path2}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("second Listen: %v", err)
	}
}

func TestListenRefusesNonSocket(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "file")
	os.WriteFile(path, []byte("data"), 0o644)
	if _, err := Listen(Settings{Socket: path}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "data" {
		t.Error("the regular file was changed")
	}
}

func TestListenTCP(t *testing.T) {
	if _, err := ListenTCP(Settings{TCPListen: "0.0.0.0:0"}); err == nil {
		t.Error("non-loopback TCP accepted")
	}
	l, err := ListenTCP(Settings{TCPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

func TestSettingsValidate(t *testing.T) {
	good := []Settings{{}, {TCPListen: "localhost:8080"}, {TCPListen: "[::1]:1"}, {ChatTemplate: "gemma", LogLevel: "debug"}}
	for _, s := range good {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	bad := []Settings{
		{TCPListen: "10.0.0.1:80"}, {TCPListen: "nonsense"}, {ChatTemplate: "alpaca"}, {LogLevel: "loud"},
		{MaxBodyBytes: -1}, {RequestTimeout: -1}, {SocketMode: os.ModeSetuid | 0o660},
	}
	for _, s := range bad {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v: accepted", s)
		}
	}
	s := Settings{}
	s.Sampling.TopP = 3
	if err := s.Validate(); err == nil {
		t.Error("top_p 3 accepted as a default")
	}
	d := Settings{}.withDefaults()
	if d.MaxBodyBytes != 1<<20 || d.MaxTokensCap != 4096 || d.SocketMode != 0o660 || len(d.AllowedUIDs) != 2 {
		t.Errorf("defaults: %+v", d)
	}
}

func TestServeTCP(t *testing.T) {
	srv := New(newFake(), Settings{AllowedUIDs: []uint32{uint32(os.Getuid()) + 777}}, nil)
	l, err := ListenTCP(Settings{TCPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	// TCP peers have no credentials; the loopback-only listener is the access control.
	resp, err := http.Get("http://" + l.Addr().String() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("health over TCP: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
