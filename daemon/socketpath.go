package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// systemSocketDir is the service's socket directory (systemd's RuntimeDirectory=edgelm).
const systemSocketDir = "/run/edgelm"

// geteuid and systemDirWritable are replaced by tests that play another user.
var (
	geteuid           = os.Geteuid
	systemDirWritable = func() bool { return syscall.Access(systemSocketDir, 2 /* W_OK */) == nil }
)

// DefaultSocket returns the socket path used when none is configured, the same for the daemon
// and its clients: $XDG_RUNTIME_DIR/edgelm.sock; else, as root, /run/edgelm/edgelm.sock; else
// /run/edgelm/edgelm.sock when that directory exists and is writable (the service's, for a user
// in its group); else $TMPDIR/edgelm-UID/edgelm.sock. It creates nothing: the daemon calls
// MakeSocketDir first.
func DefaultSocket() (string, error) {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "edgelm.sock"), nil
	}
	if geteuid() == 0 || systemDirWritable() {
		return filepath.Join(systemSocketDir, "edgelm.sock"), nil
	}
	return filepath.Join(os.TempDir(), "edgelm-"+strconv.Itoa(geteuid()), "edgelm.sock"), nil
}

// MakeSocketDir creates the directory of a default socket path when it is missing: /run/edgelm
// (0755) as root, a private one (0700) in $TMPDIR otherwise. A directory in $TMPDIR that another
// user made, or that others may write, is refused: they could replace the socket.
func MakeSocketDir(socket string) error {
	dir := filepath.Dir(socket)
	if dir == systemSocketDir {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("daemon: socket directory: %w", err)
		}
		return nil
	}
	if filepath.Dir(dir) != filepath.Clean(os.TempDir()) {
		return nil // $XDG_RUNTIME_DIR exists already, by definition
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return fmt.Errorf("daemon: socket directory: %w", err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("daemon: socket directory: %w", err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !st.IsDir() || !ok || int(sys.Uid) != geteuid() || st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("daemon: socket directory %s is not a directory of this user's that only it can write; remove it or give --socket", dir)
	}
	return nil
}
