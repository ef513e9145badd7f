package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"edgelm/daemon"
	"edgelm/engine"
)

// asUser runs curl against the daemon as uid:gid with no supplementary groups (setpriv) and
// returns the HTTP status (0 when it could not connect) and the body.
func asUser(t *testing.T, d *daemonUnderTest, uid, gid int, path string) (int, string) {
	t.Helper()
	return asUserGroups(t, d, uid, gid, "", path)
}

// asUserGroups is asUser with the supplementary groups set ("1,2"; "" for none).
func asUserGroups(t *testing.T, d *daemonUnderTest, uid, gid int, groups, path string) (int, string) {
	t.Helper()
	g := "--clear-groups"
	if groups != "" {
		g = "--groups=" + groups
	}
	cmd := exec.Command("setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", gid), g,
		"curl", "-s", "-w", "\n%{http_code}", "--unix-socket", d.socket, "http://edgelm"+path)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	s := out.String()
	i := strings.LastIndexByte(s, '\n')
	var status int
	fmt.Sscan(s[i+1:], &status)
	if err != nil && status != 0 {
		t.Fatalf("setpriv curl: %v: %s", err, errb.String())
	}
	return status, s[:max(i, 0)]
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("access tests switch users: run as root (CI does)")
	}
	for _, tool := range []string{"setpriv", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("access tests need %s (util-linux, curl)", tool)
		}
	}
}

// openDir lets other users reach the socket: the temp dir is created 0700.
func openDir(t *testing.T, d *daemonUnderTest) {
	t.Helper()
	if err := os.Chmod(filepath.Dir(d.socket), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestPeerCredentials: with the socket open to everyone (0666), a client of another uid is
// refused with 403 by the SO_PEERCRED check unless its uid or primary gid is allowed, and the
// refusal is counted and logged with the peer's uid.
func TestPeerCredentials(t *testing.T) {
	needRoot(t)
	d := start(t, engine.Options{}, daemon.Settings{SocketMode: 0o666})
	openDir(t, d)
	const nobody, nogroup, other = 65534, 65534, 12345
	check := func(how string, uid, gid, want int) {
		t.Helper()
		for _, path := range []string{"/health", "/v1/models"} {
			status, body := asUser(t, d, uid, gid, path)
			if status != want {
				t.Errorf("%s: uid %d gid %d GET %s: %d %s, want %d", how, uid, gid, path, status, body, want)
			}
			if want == 403 && !strings.Contains(body, `"forbidden"`) {
				t.Errorf("%s: 403 body %s", how, body)
			}
		}
	}
	check("default (daemon's uid and root)", nobody, nogroup, 403)
	check("default", other, other, 403)
	check("default, root", 0, 0, 200)
	if !strings.Contains(d.logs.String(), "uid=65534") {
		t.Errorf("the refusal is not logged with the peer's uid:\n%s", tail(d.logs.String(), 5))
	}
	if f := d.metric("edgelm_forbidden_total"); f != 4 {
		t.Errorf("edgelm_forbidden_total = %v, want 4", f)
	}

	set := d.srv.Settings()
	set.AllowedUIDs = []uint32{0, nobody}
	if err := d.srv.Apply(set); err != nil {
		t.Fatal(err)
	}
	check("allowed_uids [0 65534]", nobody, nogroup, 200)
	check("allowed_uids [0 65534]", other, other, 403)

	set.AllowedUIDs, set.AllowedGIDs = []uint32{0}, []uint32{nogroup}
	if err := d.srv.Apply(set); err != nil {
		t.Fatal(err)
	}
	check("allowed_gids [65534]", other, nogroup, 200)
	check("allowed_gids [65534]", nobody, other, 403) // the uid is no longer allowed, the gid is not
	check("allowed_gids [65534]", 0, 0, 200)
	// A supplementary group counts as the primary one does: `usermod -aG edgelm alice` works.
	if status, body := asUserGroups(t, d, other, other, "4242,65534", "/health"); status != 200 {
		t.Errorf("supplementary group 65534 allowed: %d %s", status, body)
	}
	if status, _ := asUserGroups(t, d, other, other, "4242", "/health"); status != 403 {
		t.Errorf("no allowed group among the supplementary ones: %d, want 403", status)
	}
}

// TestSocketModeAndGroup: the socket file gets the configured mode and group, and the kernel
// enforces them before the daemon sees the peer: a user outside the group cannot connect to a
// 0660 socket, a group member can (and passes allowed_gids), nobody but root reaches a 0600 one.
func TestSocketModeAndGroup(t *testing.T) {
	needRoot(t)
	const nogroup, other = 65534, 12345
	d := start(t, engine.Options{}, daemon.Settings{SocketMode: 0o660, SocketGroup: fmt.Sprint(nogroup), AllowedGIDs: []uint32{nogroup}})
	openDir(t, d)
	var st unix.Stat_t
	if err := unix.Stat(d.socket, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Mode&0o7777 != 0o660 || st.Gid != nogroup || st.Uid != 0 {
		t.Errorf("socket %s: mode %o uid %d gid %d, want a socket 0660 uid 0 gid %d", d.socket, st.Mode, st.Uid, st.Gid, nogroup)
	}
	if status, body := asUser(t, d, other, other, "/health"); status != 0 {
		t.Errorf("uid %d outside the socket's group connected: %d %s", other, status, body)
	}
	if status, body := asUser(t, d, other, nogroup, "/health"); status != 200 {
		t.Errorf("a member of the socket's group (and allowed_gids): %d %s", status, body)
	}

	d2 := start(t, engine.Options{}, daemon.Settings{SocketMode: 0o600})
	openDir(t, d2)
	if err := unix.Stat(d2.socket, &st); err != nil || st.Mode&0o7777 != 0o600 {
		t.Errorf("socket %s: mode %o (%v), want 0600", d2.socket, st.Mode&0o7777, err)
	}
	if status, _ := asUser(t, d2, other, nogroup, "/health"); status != 0 {
		t.Errorf("a 0600 socket let uid %d connect (status %d)", other, status)
	}
	if status, _ := asUser(t, d2, 0, 0, "/health"); status != 200 {
		t.Errorf("root on a 0600 socket: %d", status)
	}
}

// TestNoRequestReachesTheFilesystem names an existing file in every request field that could
// carry a path and watches that file and its directory with inotify: the daemon must answer
// model_not_found or treat the path as text, and never open the file or list the directory.
func TestNoRequestReachesTheFilesystem(t *testing.T) {
	dir := t.TempDir()
	canary := filepath.Join(dir, "secret.gguf")
	if err := os.WriteFile(canary, []byte("GGUF not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	defer unix.Close(fd)
	for _, p := range []string{canary, dir} {
		if _, err := unix.InotifyAddWatch(fd, p, unix.IN_OPEN|unix.IN_ACCESS); err != nil {
			t.Fatal(err)
		}
	}
	d := start(t, engine.Options{}, daemon.Settings{})
	rel, _ := filepath.Rel(filepath.Dir(d.model), canary)
	for _, name := range []string{canary, rel, "file://" + canary, canary + "\x00", "../" + filepath.Base(dir) + "/secret"} {
		m := jsonString(name)
		for _, req := range []struct{ path, body string }{
			{"/v1/completions", `{"prompt":"x","max_tokens":1,"model":` + m + `}`},
			{"/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"max_tokens":1,"model":` + m + `}`},
		} {
			r, err := d.do(http.MethodPost, req.path, req.body)
			if err != nil || r.status != 404 || r.code() != "model_not_found" {
				t.Errorf("%s model %q: %v %d %s", req.path, name, err, r.status, r.body)
			}
		}
		r, err := d.do(http.MethodGet, "/v1/models/"+url.PathEscape(name), "")
		if err != nil || r.status != 404 {
			t.Errorf("GET /v1/models/%s: %v %d %s", name, err, r.status, r.body)
		}
	}
	c := jsonString(canary)
	for _, req := range []struct{ path, body string }{
		{"/v1/completions", `{"prompt":` + c + `,"max_tokens":2}`},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"file://` + canary + `"}},{"type":"text","text":` + c + `}]}],"max_tokens":2}`},
		{"/v1/tokenize", `{"content":` + c + `}`},
	} {
		if r, err := d.do(http.MethodPost, req.path, req.body); err != nil || r.status >= 500 {
			t.Errorf("%s with a path in the text: %v %d %s", req.path, err, r.status, r.body)
		}
	}
	buf := make([]byte, 4096)
	n, err := unix.Read(fd, buf)
	if err != nil && err != syscall.EAGAIN {
		t.Fatal(err)
	}
	if n > 0 {
		t.Errorf("the canary file or its directory was opened or read (%d bytes of inotify events)", n)
	}
	// Control: the watch does see an open.
	if f, err := os.Open(canary); err == nil {
		f.Close()
	}
	if n, _ := unix.Read(fd, buf); n <= 0 {
		t.Error("control: opening the canary raised no inotify event, so the check above proves nothing")
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
