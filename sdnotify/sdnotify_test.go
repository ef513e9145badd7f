package sdnotify

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeManager listens where systemd would and returns the datagrams it receives.
func fakeManager(t *testing.T, name string) <-chan string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	ch := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(ch)
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return ch
}

func receive(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return ""
	}
}

func TestMessages(t *testing.T) {
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify"),
		fmt.Sprintf("@edgelm-sdnotify-test-%d", os.Getpid()),
	} {
		kind := "path"
		if name[0] == '@' {
			kind = "abstract"
		}
		t.Run(kind, func(t *testing.T) {
			ch := fakeManager(t, name)
			for _, tc := range []struct {
				send func() error
				want string
			}{
				{Ready, "READY=1"},
				{Stopping, "STOPPING=1"},
				{Watchdog, "WATCHDOG=1"},
				{func() error { return Status("serving tiny.gguf\n3 requests") }, "STATUS=serving tiny.gguf 3 requests"},
			} {
				if err := tc.send(); err != nil {
					t.Fatal(err)
				}
				if got := receive(t, ch); got != tc.want {
					t.Errorf("got %q, want %q", got, tc.want)
				}
			}

			var ts unix.Timespec
			if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
				t.Fatal(err)
			}
			before := int64(ts.Sec)*1e6 + int64(ts.Nsec)/1e3
			if err := Reloading(); err != nil {
				t.Fatal(err)
			}
			got := receive(t, ch)
			lines := strings.Split(got, "\n")
			if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
				t.Fatalf("got %q, want RELOADING=1 and MONOTONIC_USEC=", got)
			}
			usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if usec < before || usec > before+5e6 {
				t.Errorf("MONOTONIC_USEC=%d, clock read %d just before", usec, before)
			}
		})
	}
}

func TestNoSocketIsNoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	for _, f := range []func() error{Ready, Reloading, Stopping, Watchdog} {
		if err := f(); err != nil {
			t.Error(err)
		}
	}
}

func TestBadSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	if err := Ready(); err == nil {
		t.Error("want an error when nobody listens")
	}
	t.Setenv("NOTIFY_SOCKET", "relative")
	if err := Ready(); err == nil {
		t.Error("want an error for a relative NOTIFY_SOCKET")
	}
}

func TestWatchdogInterval(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		ok        bool
	}{
		{"", "", 0, false},
		{"30000000", "", 30 * time.Second, true},
		{"30000000", me, 30 * time.Second, true},
		{"30000000", "1", 0, false},
		{"0", "", 0, false},
		{"x", "", 0, false},
	} {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		if got, ok := WatchdogInterval(); got != tc.want || ok != tc.ok {
			t.Errorf("USEC=%q PID=%q: got %v %v, want %v %v", tc.usec, tc.pid, got, ok, tc.want, tc.ok)
		}
	}
}

func TestListenersNone(t *testing.T) {
	t.Setenv("LISTEN_FDS", "1")
	t.Setenv("LISTEN_PID", "1") // not us
	ls, err := Listeners()
	if err != nil || ls != nil {
		t.Fatalf("got %v, %v; want none", ls, err)
	}
	if os.Getenv("LISTEN_FDS") != "" {
		t.Error("LISTEN_FDS still set")
	}
}

// TestListeners passes a listening socket as fd 3 to a child (this test binary again), as
// systemd would; the child accepts one connection through Listeners and answers.
func TestListeners(t *testing.T) {
	if os.Getenv("SDNOTIFY_TEST_CHILD") == "1" {
		listenerChild()
		return
	}
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestListeners$")
	cmd.Env = append(os.Environ(), "SDNOTIFY_TEST_CHILD=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=api")
	cmd.ExtraFiles = []*os.File{f} // becomes fd 3
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.ENOEXEC) {
			t.Skipf("cannot run this test binary as a child here (under qemu-user without binfmt?): %v", err)
		}
		t.Fatal(err)
	}
	f.Close()
	defer cmd.Wait()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if want := "hello from api, env cleared\n"; line != want {
		t.Errorf("child said %q, want %q", line, want)
	}
	go func() { // drain the child's test output
		b := make([]byte, 4096)
		for {
			if _, err := out.Read(b); err != nil {
				return
			}
		}
	}()
}

// listenerChild runs in the child: systemd sets LISTEN_PID to the child's pid before exec,
// which a Go parent cannot, so the child does it for itself.
func listenerChild() {
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	names := os.Getenv("LISTEN_FDNAMES")
	ls, err := Listeners()
	if err != nil || len(ls) != 1 {
		fmt.Fprintln(os.Stderr, "child:", ls, err)
		os.Exit(1)
	}
	c, err := ls[0].Accept()
	if err != nil {
		os.Exit(1)
	}
	env := "env cleared"
	if os.Getenv("LISTEN_FDS") != "" || os.Getenv("LISTEN_PID") != "" || os.Getenv("LISTEN_FDNAMES") != "" {
		env = "env kept"
	}
	fmt.Fprintf(c, "hello from %s, %s\n", names, env)
	c.Close()
}
