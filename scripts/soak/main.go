// Command soak drives an edgelm daemon over its Unix socket with concurrent clients for a fixed
// time and checks that it stays healthy: every request either succeeds or was cancelled by the
// client on purpose, and the daemon's resident memory, threads and open file descriptors stay flat.
// scripts/soak.sh builds the daemon, starts it and runs this; see docs/reliability.md.
//
// Each client loops over five kinds of request, picked at random: a completion, a chat completion
// (the daemon must have a chat format), a streamed completion, a streamed chat, and a streamed
// request the client cancels after its first tokens. A request is an unexpected error when its
// status is not 200, its body does not decode, a stream ends without a finish_reason or [DONE],
// or the connection fails other than by our own cancellation.
//
// Every -sample interval it reads VmRSS and Threads from /proc/PID/status, counts /proc/PID/fd and
// scrapes edgelm_kv_bytes and edgelm_requests_in_flight from /metrics. The Go runtime's goroutine
// count is not exported by the daemon, so Threads (OS threads) stands in for it.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var prompts = []string{
	"Once upon a time", "The little dog", "She looked at the sky and", "Tom and Lily went to the park.",
	"One day, a big bird", "The cat was sad because", "Mom said", "In the forest there was a tree",
}

type kind int

const (
	completion kind = iota
	chat
	streamCompletion
	streamChat
	cancelled
	nKinds
)

var kindNames = [...]string{"completion", "chat", "stream completion", "stream chat", "cancelled stream"}

type result struct {
	kind    kind
	latency time.Duration
	err     error // unexpected errors only
}

type sample struct {
	at        time.Duration
	rssKiB    int64
	threads   int64
	fds       int
	kvBytes   int64
	inFlight  int64
	requests  int64
	scrapeErr error
}

func main() {
	socket := flag.String("socket", "", "daemon Unix socket")
	pid := flag.Int("pid", 0, "daemon process id (for /proc figures)")
	duration := flag.Duration("duration", 10*time.Minute, "how long to run")
	clients := flag.Int("clients", 16, "concurrent clients")
	warmup := flag.Duration("warmup", 0, "figures after this are checked for flatness (default: a tenth of -duration, at least 30s)")
	every := flag.Duration("sample", 10*time.Second, "sampling interval")
	pause := flag.Duration("pause", 0, "each client sleeps this long between requests (keeps CPU use moderate)")
	csvPath := flag.String("csv", "", "write the samples here")
	flag.Parse()
	if *socket == "" || *pid == 0 {
		fmt.Fprintln(os.Stderr, "soak: -socket and -pid are required")
		os.Exit(2)
	}
	if *warmup == 0 {
		*warmup = max(*duration/10, 30*time.Second)
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", *socket)
		},
		MaxIdleConnsPerHost: *clients,
	}
	hc := &http.Client{Transport: tr}

	start := time.Now()
	var samples []sample
	var nreq atomic.Int64
	take := func() {
		s := procSample(*pid)
		s.at = time.Since(start)
		s.requests = nreq.Load()
		s.kvBytes, s.inFlight, s.scrapeErr = scrape(hc)
		samples = append(samples, s)
	}
	take() // before any client connects

	ctx, stop := context.WithDeadline(context.Background(), start.Add(*duration))
	defer stop()
	results := make(chan result, 1024)
	var wg sync.WaitGroup
	for c := 0; c < *clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), uint64(start.UnixNano())))
			for ctx.Err() == nil {
				k := kind(rng.IntN(int(nKinds)))
				t0 := time.Now()
				err := run(ctx, hc, k, rng)
				if ctx.Err() != nil && err != nil {
					break // the soak ended under this request
				}
				nreq.Add(1)
				results <- result{k, time.Since(t0), err}
				if *pause > 0 {
					time.Sleep(*pause)
				}
			}
		}(c)
	}
	done := make(chan struct{})
	var all []result
	go func() {
		for r := range results {
			all = append(all, r)
		}
		close(done)
	}()
	tick := time.NewTicker(*every)
loop:
	for {
		select {
		case <-tick.C:
			take()
		case <-ctx.Done():
			break loop
		}
	}
	tick.Stop()
	wg.Wait()
	close(results)
	<-done
	// Our keep-alive connections are fds in the daemon; close them before the last count.
	tr.CloseIdleConnections()
	time.Sleep(2 * time.Second)
	take()

	os.Exit(report(all, samples, *warmup, *duration, *clients, *csvPath))
}

// run sends one request of kind k and returns an unexpected error, or nil.
func run(ctx context.Context, hc *http.Client, k kind, rng *rand.Rand) error {
	prompt := prompts[rng.IntN(len(prompts))]
	maxTok := 8 + rng.IntN(57)
	sampling := fmt.Sprintf(`"max_tokens":%d,"temperature":%.2f,"seed":%d`, maxTok, rng.Float64()*1.2, rng.IntN(1<<30))
	var path, body string
	chatReq := k == chat || k == streamChat || k == cancelled && rng.IntN(2) == 0
	if chatReq {
		path = "/v1/chat/completions"
		body = fmt.Sprintf(`{"messages":[{"role":"system","content":"Tell short stories."},{"role":"user","content":%q}],%s`, prompt, sampling)
	} else {
		path = "/v1/completions"
		body = fmt.Sprintf(`{"prompt":%q,%s`, prompt, sampling)
	}
	stream := k == streamCompletion || k == streamChat || k == cancelled
	if stream {
		body += `,"stream":true,"stream_options":{"include_usage":true}`
	}
	body += "}"

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodPost, "http://edgelm"+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: status %d: %s", path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if !stream {
		var r struct {
			Choices []struct {
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
			Usage struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return fmt.Errorf("%s: body: %w", path, err)
		}
		if len(r.Choices) != 1 || r.Choices[0].FinishReason == "" || r.Usage.CompletionTokens > maxTok {
			return fmt.Errorf("%s: bad answer %+v", path, r)
		}
		return nil
	}
	sc := bufio.NewScanner(resp.Body)
	chunks, finished, doneSeen := 0, false, false
	cancelAfter := 1 + rng.IntN(3)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		data := strings.TrimPrefix(line, "data: ")
		if data == "[DONE]" {
			doneSeen = true
			break
		}
		if strings.Contains(data, `"error"`) {
			return fmt.Errorf("%s: error event %s", path, data)
		}
		chunks++
		if strings.Contains(data, `"finish_reason":"`) {
			finished = true
		}
		if k == cancelled && chunks >= cancelAfter {
			cancel() // the daemon must notice and drop the sequence
			return nil
		}
	}
	if k == cancelled {
		return nil // finished before we cancelled: fine
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: stream: %w", path, err)
	}
	if !finished || !doneSeen {
		return fmt.Errorf("%s: stream ended without finish_reason (%v) or [DONE] (%v)", path, finished, doneSeen)
	}
	return nil
}

func procSample(pid int) sample {
	var s sample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case "VmRSS:":
				s.rssKiB, _ = strconv.ParseInt(f[1], 10, 64)
			case "Threads:":
				s.threads, _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
	}
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	s.fds = len(fds)
	return s
}

func scrape(hc *http.Client) (kv, inFlight int64, err error) {
	resp, err := hc.Get("http://edgelm/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		switch f[0] {
		case "edgelm_kv_bytes":
			kv, _ = strconv.ParseInt(f[1], 10, 64)
		case "edgelm_requests_in_flight":
			inFlight, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return kv, inFlight, sc.Err()
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(p * float64(len(d)-1))
	return d[i]
}

// report prints the figures and the verdict; it returns the exit status.
func report(all []result, samples []sample, warmup, duration time.Duration, clients int, csvPath string) int {
	var lat []time.Duration
	perKind := make([][]time.Duration, nKinds)
	var errs []error
	for _, r := range all {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		lat = append(lat, r.latency)
		perKind[r.kind] = append(perKind[r.kind], r.latency)
	}
	slices.Sort(lat)
	fmt.Printf("soak: %d clients for %v: %d requests (%.1f/s), %d unexpected errors\n",
		clients, duration, len(all), float64(len(all))/duration.Seconds(), len(errs))
	for i, e := range errs {
		if i == 10 {
			fmt.Printf("  ... %d more\n", len(errs)-10)
			break
		}
		fmt.Printf("  error: %v\n", e)
	}
	fmt.Printf("latency (successful requests): p50 %v, p99 %v, max %v\n", pct(lat, 0.5).Round(time.Millisecond), pct(lat, 0.99).Round(time.Millisecond), pct(lat, 1).Round(time.Millisecond))
	fmt.Println("| Kind | Requests | p50 | p99 |")
	fmt.Println("|---|---|---|---|")
	for k := kind(0); k < nKinds; k++ {
		d := perKind[k]
		slices.Sort(d)
		fmt.Printf("| %s | %d | %v | %v |\n", kindNames[k], len(d), pct(d, 0.5).Round(time.Millisecond), pct(d, 0.99).Round(time.Millisecond))
	}

	if csvPath != "" {
		var b strings.Builder
		b.WriteString("seconds,rss_kib,threads,fds,kv_bytes,in_flight,requests\n")
		for _, s := range samples {
			fmt.Fprintf(&b, "%.0f,%d,%d,%d,%d,%d,%d\n", s.at.Seconds(), s.rssKiB, s.threads, s.fds, s.kvBytes, s.inFlight, s.requests)
		}
		if err := os.WriteFile(csvPath, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
		}
	}
	first, last := samples[0], samples[len(samples)-1]
	fmt.Printf("RSS over time (KiB):")
	for _, s := range samples {
		fmt.Printf(" %.0fs:%d", s.at.Seconds(), s.rssKiB)
	}
	fmt.Println()
	fmt.Printf("start (idle): RSS %d KiB, threads %d, fds %d\n", first.rssKiB, first.threads, first.fds)
	fmt.Printf("end (idle):   RSS %d KiB, threads %d, fds %d\n", last.rssKiB, last.threads, last.fds)
	status := 0
	if len(errs) > 0 {
		status = 1
	}
	// Flatness compares the first and the last quarter of the samples taken under load after
	// the warm-up: RSS by its mean (single samples swing with the garbage collector), threads by
	// their maximum. Growth over 10% fails.
	var after []sample
	for _, s := range samples[1 : len(samples)-1] {
		if s.at >= warmup {
			after = append(after, s)
		}
	}
	if len(after) < 4 {
		fmt.Println("verdict: FAIL (run too short: fewer than 4 samples after the warm-up)")
		return 1
	}
	q := len(after) / 4
	early, late := after[:q], after[len(after)-q:]
	mean := func(w []sample) float64 {
		var t float64
		for _, s := range w {
			t += float64(s.rssKiB)
		}
		return t / float64(len(w))
	}
	maxThreads := func(w []sample) int64 {
		var m int64
		for _, s := range w {
			m = max(m, s.threads)
		}
		return m
	}
	var peak int64
	for _, s := range after {
		peak = max(peak, s.rssKiB)
	}
	e, l := mean(early), mean(late)
	fmt.Printf("after warm-up (%v, %d samples): mean RSS first quarter %.0f KiB, last quarter %.0f KiB (%+.1f%%), peak %d KiB; threads max %d -> %d; kv bytes %d -> %d\n",
		warmup, len(after), e, l, 100*(l-e)/e, peak, maxThreads(early), maxThreads(late), early[0].kvBytes, late[len(late)-1].kvBytes)
	if l > 1.1*e {
		fmt.Println("FAIL: mean RSS grew more than 10% from the first to the last quarter after warm-up")
		status = 1
	}
	// A tenth of ~10 threads is less than one, and Go's runtime keeps every OS thread it has
	// started, so one more thread is allowed.
	if et, lt := maxThreads(early), maxThreads(late); float64(lt) > max(1.1*float64(et), float64(et+1)) {
		fmt.Println("FAIL: threads grew by more than 10% (and more than one) from the first to the last quarter after warm-up")
		status = 1
	}
	if last.fds > first.fds {
		fmt.Printf("FAIL: open fds grew from %d to %d\n", first.fds, last.fds)
		status = 1
	}
	if status == 0 {
		fmt.Println("verdict: PASS")
	} else {
		fmt.Println("verdict: FAIL")
	}
	return status
}
