package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Listen creates the Unix socket s.Socket (or DefaultSocket when empty) with mode s.SocketMode
// (default 0660) and group s.SocketGroup. A socket file left by a crashed daemon is replaced; one a
// live process still listens on is not: that is an error "socket PATH is in use by another process".
// Two daemons starting together are kept apart by an flock on PATH.lock, held until the listener
// is closed. Closing the listener removes the socket file.
func Listen(s Settings) (net.Listener, error) {
	s = s.withDefaults()
	path := s.Socket
	if path == "" {
		var err error
		if path, err = DefaultSocket(); err != nil {
			return nil, err
		}
		if err := MakeSocketDir(path); err != nil {
			return nil, err
		}
	}
	gid := -1
	if s.SocketGroup != "" {
		g, err := lookupGroup(s.SocketGroup)
		if err != nil {
			return nil, fmt.Errorf("daemon: socket %s: %w", path, err)
		}
		gid = g
	}

	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon: socket %s: lock: %w", path, err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("daemon: socket %s is in use by another process (lock %s.lock held)", path, path)
		}
		return nil, fmt.Errorf("daemon: socket %s: lock: %w", path, err)
	}
	fail := func(err error) (net.Listener, error) {
		lock.Close()
		return nil, err
	}

	if err := removeStale(path); err != nil {
		return fail(err)
	}
	// The umask makes the socket file appear with no more than owner rw, so there is no window in
	// which others could connect before the chmod below. Listen runs at start-up, before anything
	// else in the process creates files.
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return fail(fmt.Errorf("daemon: listen on %s: %w", path, err))
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			l.Close()
			return fail(fmt.Errorf("daemon: socket %s: set group %s: %w", path, s.SocketGroup, err))
		}
	}
	if err := os.Chmod(path, s.SocketMode); err != nil {
		l.Close()
		return fail(fmt.Errorf("daemon: socket %s: chmod: %w", path, err))
	}
	return &lockedListener{Listener: l, lock: lock}, nil
}

// removeStale removes path when it is a socket nobody accepts on. A path that is not a socket is
// left alone: the configuration probably names the wrong file.
func removeStale(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("daemon: socket %s: %w", path, err)
	}
	if st.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("daemon: socket %s: the path exists and is not a socket; refusing to replace it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("daemon: socket %s is in use by another process", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("daemon: socket %s: probing the existing socket: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("daemon: socket %s: removing the stale socket: %w", path, err)
	}
	return nil
}

func lookupGroup(g string) (int, error) {
	if n, err := strconv.Atoi(g); err == nil && n >= 0 {
		return n, nil
	}
	grp, err := user.LookupGroup(g)
	if err != nil {
		return 0, fmt.Errorf("group %q: %w", g, err)
	}
	n, err := strconv.Atoi(grp.Gid)
	if err != nil {
		return 0, fmt.Errorf("group %q: gid %q: %w", g, grp.Gid, err)
	}
	return n, nil
}

// lockedListener holds the socket's lock file until it is closed.
type lockedListener struct {
	net.Listener
	lock *os.File
	once sync.Once
}

func (l *lockedListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { l.lock.Close() })
	return err
}

// ListenTCP listens on s.TCPListen, which must be a loopback address.
func ListenTCP(s Settings) (net.Listener, error) {
	if s.TCPListen == "" {
		return nil, errors.New("daemon: tcp: no address configured")
	}
	if err := checkLoopback(s.TCPListen); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	l, err := net.Listen("tcp", s.TCPListen)
	if err != nil {
		return nil, fmt.Errorf("daemon: tcp: %w", err)
	}
	return l, nil
}

// peer is who is on the other end of a connection.
type peer struct {
	unix     bool // a Unix socket peer, with credentials below when credOK
	credOK   bool
	uid, gid uint32
	groups   []uint32 // supplementary groups (SO_PEERGROUPS), as they were at connect time
	pid      int32
	remote   string
}

// peerOf reads SO_PEERCRED from a Unix connection.
func peerOf(c net.Conn) peer {
	p := peer{remote: c.RemoteAddr().String()}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return p
	}
	p.unix = true
	raw, err := uc.SyscallConn()
	if err != nil {
		return p
	}
	var cred *unix.Ucred
	var cerr error
	var groups []uint32
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		groups = peerGroups(int(fd))
	}); err != nil || cerr != nil {
		return p
	}
	p.credOK, p.uid, p.gid, p.pid, p.groups = true, cred.Uid, cred.Gid, cred.Pid, groups
	return p
}

// peerGroups reads the peer's supplementary groups with SO_PEERGROUPS (Linux 4.13+), which the
// kernel records at connect time like SO_PEERCRED: unlike reading /proc/PID/status, it cannot
// be raced by the peer exiting and its pid being reused. nil when the kernel cannot say.
func peerGroups(fd int) []uint32 {
	buf := make([]uint32, 64)
	for {
		n := uint32(len(buf) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case errno == 0:
			return buf[:n/4]
		case errno == unix.ERANGE && int(n/4) > len(buf) && n/4 <= 1<<16:
			buf = make([]uint32, n/4) // n is the size the kernel needs
		default:
			return nil
		}
	}
}
