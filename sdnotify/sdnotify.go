// Package sdnotify speaks the two small systemd protocols a service needs: sd_notify (state
// messages over the unixgram socket in $NOTIFY_SOCKET) and socket activation (listeners passed
// as fds 3... with $LISTEN_FDS and $LISTEN_PID).
//
// Every notification is a no-op returning nil when $NOTIFY_SOCKET is unset, so the daemon calls
// them unconditionally and behaves the same when run by hand.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Notify sends state (newline-separated VAR=value assignments) to the service manager. It
// returns nil without doing anything when $NOTIFY_SOCKET is unset. Names starting with '@' are
// abstract sockets (Go's net package maps the '@' to the leading NUL byte).
func Notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] != '/' && path[0] != '@' {
		return fmt.Errorf("sdnotify: NOTIFY_SOCKET %q is neither a path nor an abstract name", path)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: send %q: %w", firstLine(state), err)
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Ready tells systemd start-up (or a reload) finished: READY=1.
func Ready() error { return Notify("READY=1") }

// Reloading tells systemd a reload began: RELOADING=1 with MONOTONIC_USEC, the CLOCK_MONOTONIC
// time systemd uses to match it with the READY=1 that ends the reload.
func Reloading() error {
	return Notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10))
}

// Stopping tells systemd the service is shutting down: STOPPING=1.
func Stopping() error { return Notify("STOPPING=1") }

// Watchdog keeps the service's watchdog from firing: WATCHDOG=1.
func Watchdog() error { return Notify("WATCHDOG=1") }

// Status sets the free-form status line shown by systemctl status: STATUS=s. Newlines in s would
// start new assignments, so they become spaces.
func Status(s string) error {
	return Notify("STATUS=" + strings.ReplaceAll(s, "\n", " "))
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return int64(ts.Sec)*1e6 + int64(ts.Nsec)/1e3 // Timespec fields are 32-bit on 32-bit ARM
}

// WatchdogInterval returns the watchdog timeout systemd expects pings within ($WATCHDOG_USEC),
// and false when there is none or it is meant for another process ($WATCHDOG_PID set and not
// ours). Ping at half the interval or more often.
func WatchdogInterval() (time.Duration, bool) {
	s := os.Getenv("WATCHDOG_USEC")
	if s == "" {
		return 0, false
	}
	usec, err := strconv.ParseInt(s, 10, 64)
	if err != nil || usec <= 0 {
		return 0, false
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" {
		pid, err := strconv.Atoi(p)
		if err != nil || pid != os.Getpid() {
			return 0, false
		}
	}
	return time.Duration(usec) * time.Microsecond, true
}

// listenFdsStart is the first fd systemd passes (SD_LISTEN_FDS_START).
const listenFdsStart = 3

// Listeners returns the stream sockets systemd passed to this process ($LISTEN_FDS fds from fd 3,
// when $LISTEN_PID is our pid), in order, or nil when none were passed. It unsets LISTEN_PID,
// LISTEN_FDS and LISTEN_FDNAMES so child processes do not take them too, and marks the fds
// close-on-exec. Call it once.
func Listeners() ([]net.Listener, error) {
	files, err := files()
	if err != nil || len(files) == 0 {
		return nil, err
	}
	ls := make([]net.Listener, 0, len(files))
	for _, f := range files {
		l, err := net.FileListener(f) // dups the fd
		f.Close()
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("sdnotify: passed fd %s is not a listening stream socket: %w", f.Name(), err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func files() ([]*os.File, error) {
	pidStr, fdsStr, names := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	if pidStr == "" || fdsStr == "" {
		return nil, nil
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil {
		return nil, fmt.Errorf("sdnotify: LISTEN_PID %q is not a number", pidStr)
	}
	if pid != os.Getpid() {
		return nil, nil // meant for another process (our parent, say)
	}
	n, err := strconv.Atoi(fdsStr)
	if err != nil || n < 0 || n > 1024 {
		return nil, fmt.Errorf("sdnotify: LISTEN_FDS %q is not a count of fds", fdsStr)
	}
	nameList := strings.Split(names, ":")
	files := make([]*os.File, 0, n)
	for i := 0; i < n; i++ {
		fd := listenFdsStart + i
		syscall.CloseOnExec(fd)
		name := "LISTEN_FD_" + strconv.Itoa(fd)
		if i < len(nameList) && nameList[i] != "" {
			name = nameList[i]
		}
		files = append(files, os.NewFile(uintptr(fd), name))
	}
	return files, nil
}
