package daemon

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestDefaultSocket: without XDG_RUNTIME_DIR (root, containers) the daemon and its clients agree
// on a path instead of failing with "no socket path".
func TestDefaultSocket(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	if p, err := DefaultSocket(); err != nil || p != "/run/user/1000/edgelm.sock" {
		t.Errorf("with XDG_RUNTIME_DIR: %q, %v", p, err)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	writable := systemDirWritable
	defer func() { geteuid, systemDirWritable = os.Geteuid, writable }()

	geteuid = func() int { return 0 }
	if p, err := DefaultSocket(); err != nil || p != "/run/edgelm/edgelm.sock" {
		t.Errorf("root: %q, %v", p, err)
	}

	uid := os.Geteuid() + 1000
	geteuid = func() int { return uid }
	systemDirWritable = func() bool { return true } // the service's directory, for a user in its group
	if p, err := DefaultSocket(); err != nil || p != "/run/edgelm/edgelm.sock" {
		t.Errorf("user %d who may write /run/edgelm: %q, %v", uid, p, err)
	}
	systemDirWritable = func() bool { return false }
	p, err := DefaultSocket()
	want := filepath.Join(tmp, "edgelm-"+strconv.Itoa(uid), "edgelm.sock")
	if err != nil || p != want {
		t.Errorf("user %d: %q, %v; want %q", uid, p, err, want)
	}

	// The private directory: made 0700 by its user; one that others may write, or another user's,
	// is refused.
	geteuid = os.Geteuid
	mine := filepath.Join(tmp, "edgelm-"+strconv.Itoa(os.Geteuid()), "edgelm.sock")
	if err := MakeSocketDir(mine); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Dir(mine)); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Errorf("socket directory: %v, %v; want a 0700 directory", st.Mode(), err)
	}
	if err := MakeSocketDir(mine); err != nil {
		t.Errorf("existing directory: %v", err)
	}
	os.Chmod(filepath.Dir(mine), 0o777)
	if err := MakeSocketDir(mine); err == nil {
		t.Error("a directory others may write was accepted")
	}
	os.Chmod(filepath.Dir(mine), 0o700)
	geteuid = func() int { return uid }
	if err := MakeSocketDir(filepath.Join(tmp, "edgelm-"+strconv.Itoa(os.Geteuid()), "edgelm.sock")); err == nil {
		t.Error("another user's directory was accepted")
	}
	geteuid = os.Geteuid
	link := filepath.Join(tmp, "edgelm-link", "edgelm.sock")
	os.Symlink(filepath.Dir(mine), filepath.Dir(link))
	if err := MakeSocketDir(link); err == nil {
		t.Error("a symlink was accepted as the socket directory")
	}

	// Listen with no socket configured makes the directory and listens there.
	uid = os.Geteuid()
	if uid == 0 {
		t.Log("as root the default is /run/edgelm; Listen's own directory is checked for other users only")
		return
	}
	os.RemoveAll(filepath.Dir(mine))
	ln, err := Listen(Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ln.Addr().String() != mine {
		t.Errorf("listening on %s, want %s", ln.Addr(), mine)
	}
}
