package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"edgelm/chat"
	"edgelm/config"
	"edgelm/daemon"
)

func init() {
	register("serve", "serve a model over an OpenAI-compatible API on a Unix socket", runServe)
}

// runServe runs the daemon (daemon.Service): it listens first (on the socket systemd passed, else
// its own) so a busy socket fails fast and clients see 503 "loading" rather than no socket, then
// loads and warms the model and answers until SIGTERM/SIGINT. SIGHUP and changes to the config
// or model file reload. Flags override the config file, also across reloads.
func runServe(args []string) error {
	fs := newFlags("serve", "[--config FILE] [--model FILE] [--socket PATH] [flags]")
	configPath := fs.String("config", "", "TOML config file (see configs/edgelm.toml and docs/configuration.md); flags override it")
	check := fs.Bool("check-config", false, "check the configuration and the model file, print the result and exit")
	var (
		model, socket, group, tcp, tmpl, level, kernels string
		maxTokens, threads, ctxLen, maxSeq, maxQueue    int
		reread                                          bool
	)
	fs.StringVar(&model, "model", "", "GGUF model file to serve (config: model)")
	fs.StringVar(&socket, "socket", "", "Unix socket path (config: socket; without a config file $XDG_RUNTIME_DIR/edgelm.sock, else /run/edgelm/edgelm.sock as root, else $TMPDIR/edgelm-UID/edgelm.sock)")
	fs.StringVar(&group, "socket-group", "", "group (name or id) given to the socket file (config: socket_group)")
	fs.StringVar(&tcp, "tcp", "", "also listen on this loopback TCP address, no peer-credential check there (config: tcp_listen)")
	fs.StringVar(&tmpl, "chat-template", "", "chat format for /v1/chat/completions: "+chat.FormatNames()+" (config: chat_template; default: detect)")
	fs.StringVar(&level, "log-level", "info", "debug, info, warn or error (config: log_level)")
	fs.IntVar(&maxTokens, "max-tokens-cap", daemon.DefaultMaxTokensCap, "largest max_tokens a request may ask for (config: limits.max_tokens)")
	fs.IntVar(&threads, "threads", 0, "kernel threads, 0: one per physical core (config: threads)")
	fs.IntVar(&ctxLen, "ctx", 0, "context length per sequence, 0: the model's (config: context_length)")
	fs.IntVar(&maxSeq, "max-sequences", 4, "sequences decoded together (config: max_sequences)")
	fs.IntVar(&maxQueue, "max-queue", 64, "requests waiting for a sequence slot before 429 (config: max_queue)")
	fs.StringVar(&kernels, "kernels", "", `kernel feature cap, e.g. "generic" (config: kernels; default: best available)`)
	fs.BoolVar(&reread, "model-reread", false, "drop the model's cached pages at load so it is read again in 2 MB pages (config: model_reread)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: %w", fs.Args(), errUsage)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	if model != "" {
		abs, err := filepath.Abs(model)
		if err != nil {
			return err
		}
		model = abs
	}
	if *configPath == "" && !given["socket"] {
		// Without a config file, keep the per-user default rather than the service's path.
		s, err := daemon.DefaultSocket()
		if err != nil {
			return err
		}
		if !*check && os.Getenv("LISTEN_FDS") == "" { // systemd's socket needs no directory
			if err := daemon.MakeSocketDir(s); err != nil {
				return err
			}
		}
		socket, given["socket"] = s, true
	}
	if *configPath == "" && !given["model"] {
		return errors.New("no model configured: give one with --model FILE (or model = \"...\" in the --config file)")
	}
	override := func(c *config.Config) {
		for name := range given {
			switch name {
			case "model":
				c.Model = model
			case "socket":
				c.Socket = socket
			case "socket-group":
				c.SocketGroup = group
			case "tcp":
				c.TCPListen = tcp
			case "chat-template":
				c.ChatTemplate = tmpl
			case "log-level":
				c.LogLevel = level
			case "max-tokens-cap":
				c.Limits.MaxTokens = maxTokens
			case "threads":
				c.Threads = threads
			case "ctx":
				c.ContextLength = ctxLen
			case "max-sequences":
				c.MaxSequences = maxSeq
			case "max-queue":
				c.MaxQueue = maxQueue
			case "kernels":
				c.Kernels = kernels
			case "model-reread":
				c.ModelReread = reread
			}
		}
	}

	if *check {
		c, err := daemon.CheckConfig(*configPath, override)
		if err != nil {
			return err
		}
		src := *configPath
		if src == "" {
			src = "defaults and flags"
		}
		fmt.Printf("%s: ok (model %s, socket %s)\n", src, c.Model, c.Socket)
		return nil
	}

	svc, err := daemon.NewService(daemon.ServiceOptions{ConfigPath: *configPath, Override: override})
	if err != nil {
		return err
	}
	return svc.Run(context.Background())
}
