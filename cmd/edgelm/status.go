package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"edgelm/client"
	"edgelm/daemon"
)

func init() {
	register("status", "show a running daemon's health and a metrics summary", runStatus)
}

func runStatus(args []string) error {
	fs := newFlags("status", "[--socket PATH]")
	socket := fs.String("socket", "", "daemon socket (default: as edgelm serve, $XDG_RUNTIME_DIR/edgelm.sock, else /run/edgelm/edgelm.sock, else $TMPDIR/edgelm-UID/edgelm.sock)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path, err := clientSocket(*socket)
	if err != nil {
		return err
	}
	c := client.New(path)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return printStatus(ctx, os.Stdout, c, path)
}

// clientSocket is the socket a client command talks to: the flag, else the daemon's default.
func clientSocket(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	p, err := daemon.DefaultSocket()
	if err != nil {
		return "", fmt.Errorf("%v: %w", err, errUsage)
	}
	return p, nil
}

func printStatus(ctx context.Context, w io.Writer, c *client.Client, path string) error {
	h, err := c.Health(ctx)
	if errors.Is(err, client.ErrLoading) {
		fmt.Fprintf(w, "daemon   %s\nstatus   loading the model (up %.0fs)\n", path, h.UptimeSeconds)
		return nil
	}
	if err != nil {
		return err
	}
	tmpl := h.ChatTemplate
	if tmpl == "" {
		tmpl = "none (chat endpoint unavailable)"
	}
	fmt.Fprintf(w, "daemon   %s (up %s)\n", path, (time.Duration(h.UptimeSeconds) * time.Second).String())
	switch {
	case h.Status == "degraded":
		fmt.Fprintf(w, "status   DEGRADED: %s\n", h.Degraded)
	default:
		fmt.Fprintf(w, "status   %s\n", h.Status)
	}
	if h.GenerationFailures > 0 && h.LastError != nil {
		fmt.Fprintf(w, "failures %d generations failed; the last at %s: %s\n", h.GenerationFailures, h.LastError.Time.Local().Format(time.DateTime), h.LastError.Message)
	}
	if r := h.Reload; r != nil && !r.OK {
		fmt.Fprintf(w, "reload   FAILED at %s, the previous configuration is serving: %s\n", r.Time.Local().Format(time.DateTime), r.Error)
	} else if r != nil {
		fmt.Fprintf(w, "reload   ok at %s\n", r.Time.Local().Format(time.DateTime))
	}
	fmt.Fprintf(w, "model    %s (%s, %s)\n", h.Model, h.Architecture, h.Name)
	fmt.Fprintf(w, "kernels  %s, %d threads, context %d tokens\n", h.Kernels, h.Threads, h.ContextLength)
	fmt.Fprintf(w, "chat     %s\n", tmpl)
	m, err := c.Metrics(ctx)
	if err != nil {
		return err
	}
	budget := "no cap"
	if h.KV.Budget > 0 {
		budget = fmt.Sprintf("budget %s", bytesIEC(h.KV.Budget))
	}
	fmt.Fprintf(w, "kv       %s used, %s, %d bytes/token\n", bytesIEC(h.KV.Bytes), budget, h.KV.BytesPerToken)
	fmt.Fprintf(w, "now      %d active sequences, %d queued\n", h.ActiveSequences, h.QueueDepth)
	fmt.Fprintf(w, "requests %.0f answered, %.0f refused by peer check\n", m.Sum("edgelm_requests_total"), m["edgelm_forbidden_total"])
	fmt.Fprintf(w, "tokens   %.0f in, %.0f out\n", m["edgelm_prompt_tokens_total"], m["edgelm_completion_tokens_total"])
	fmt.Fprintf(w, "speed    prefill %.1f tok/s, decode %.1f tok/s\n", m["edgelm_prefill_tokens_per_second"], m["edgelm_decode_tokens_per_second"])
	fmt.Fprintf(w, "prefix   %.0f hits (%.0f tokens reused), %.0f evictions\n", m["edgelm_prefix_cache_hits_total"], m["edgelm_prefix_cache_tokens_total"], m["edgelm_prefix_cache_evictions_total"])
	return nil
}

func bytesIEC(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
