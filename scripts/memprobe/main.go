// Command memprobe measures what large requests cost a running edgelm daemon in resident memory:
// 16 concurrent /v1/tokenize requests with 1 MB of text and with_pieces, then 16 concurrent
// /v1/completions with a 1 MB prompt (rejected as longer than the context). For each phase it
// prints the daemon's peak RSS (VmHWM, reset through /proc/PID/clear_refs before the phase) and
// its RSS 1, 3 and 5 seconds after, next to the RSS before. Linux only; the daemon must be ours
// or we must be root (clear_refs).
//
//	go run ./scripts/memprobe -socket /run/edgelm.sock -pid $(pidof edgelm) -text shared/models/tinydoc-valid.txt
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	socket := flag.String("socket", "", "daemon socket")
	pid := flag.Int("pid", 0, "daemon pid")
	textPath := flag.String("text", "", "text file repeated to make the 1 MB bodies (default: a fixed sentence)")
	clients := flag.Int("clients", 16, "concurrent requests per phase")
	size := flag.Int("size", 1_000_000, "bytes of text per request")
	flag.Parse()
	if *socket == "" || *pid == 0 {
		fmt.Fprintln(os.Stderr, "memprobe: -socket and -pid are required")
		os.Exit(2)
	}
	seed := "The little dog ran to the park, and the sun was warm on the grass. "
	if *textPath != "" {
		b, err := os.ReadFile(*textPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "memprobe:", err)
			os.Exit(1)
		}
		seed = string(b)
	}
	text := strings.Repeat(seed, *size/len(seed)+1)[:*size]
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", *socket)
		},
		MaxConnsPerHost: 0,
	}}
	tok, _ := json.Marshal(map[string]any{"content": text, "with_pieces": true})
	cmp, _ := json.Marshal(map[string]any{"prompt": text, "max_tokens": 1})
	fmt.Printf("memprobe: %d clients x %d bytes of text; daemon pid %d\n", *clients, *size, *pid)
	phase(hc, *pid, *clients, "/v1/tokenize with_pieces", "/v1/tokenize", tok)
	phase(hc, *pid, *clients, "/v1/completions (too long)", "/v1/completions", cmp)
}

func phase(hc *http.Client, pid, clients int, name, path string, body []byte) {
	before := status(pid, "VmRSS")
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		fmt.Fprintln(os.Stderr, "memprobe: resetting the peak:", err)
	}
	start := time.Now()
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := 0
			resp, err := hc.Post("http://edgelm"+path, "application/json", strings.NewReader(string(body)))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start)
	peak := status(pid, "VmHWM")
	end := time.Now()
	var after []string
	for _, s := range []float64{1, 3, 5} {
		time.Sleep(time.Until(end.Add(time.Duration(s * float64(time.Second)))))
		after = append(after, fmt.Sprintf("+%.0fs %d MB", s, status(pid, "VmRSS")>>10))
	}
	fmt.Printf("%-28s statuses %v in %v: RSS before %d MB, peak %d MB, after %s\n",
		name, codes, took.Round(time.Millisecond), before>>10, peak>>10, strings.Join(after, ", "))
}

// status reads a kB field of /proc/PID/status.
func status(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return -1
}
