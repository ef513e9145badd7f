package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"edgelm/daemon"
	"edgelm/engine"
)

func init() {
	register("serve", "serve a model over an OpenAI-compatible API on a Unix socket", runServe)
}

// runServe listens first (so a busy socket fails fast and clients see 503 "loading" rather than
// no socket), then loads the model and starts answering. SIGINT/SIGTERM shut down gracefully.
func runServe(args []string) error {
	fs := newFlags("serve", "--model FILE [--socket PATH] [flags]")
	set := daemon.Defaults()
	config := fs.String("config", "", "config file (not supported yet)")
	fs.StringVar(&set.Model, "model", "", "GGUF model file to serve")
	fs.StringVar(&set.Socket, "socket", "", "Unix socket path (default $XDG_RUNTIME_DIR/edgelm.sock, else /run/edgelm/edgelm.sock)")
	fs.StringVar(&set.SocketGroup, "socket-group", "", "group (name or id) given to the socket file")
	fs.StringVar(&set.TCPListen, "tcp", "", "also listen on this loopback TCP address (no peer-credential check there)")
	fs.StringVar(&set.ChatTemplate, "chat-template", "", "chat format for /v1/chat/completions: gemma, llama2, llama3 or chatml (default: detect from the model)")
	fs.StringVar(&set.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.IntVar(&set.MaxTokensCap, "max-tokens-cap", set.MaxTokensCap, "largest max_tokens a request may ask for")
	fs.IntVar(&set.Engine.Threads, "threads", 0, "kernel threads (0: one per physical core)")
	fs.IntVar(&set.Engine.ContextLength, "ctx", 0, "context length per sequence (0: the model's)")
	fs.IntVar(&set.Engine.MaxSequences, "max-sequences", 0, "sequences decoded together (0: 4)")
	fs.IntVar(&set.Engine.MaxQueue, "max-queue", 0, "requests waiting for a sequence slot before 429 (0: 64)")
	fs.StringVar(&set.Engine.Kernels, "kernels", "", `kernel feature cap, e.g. "generic" (default: best available)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: %w", fs.Args(), errUsage)
	}
	if *config != "" {
		return fmt.Errorf("--config not supported yet; use flags: %w", errUsage)
	}
	if set.Model == "" {
		return errors.New("no model configured: give one with --model FILE (or model = \"...\" in the config file)")
	}
	if st, err := os.Stat(set.Model); err != nil {
		return fmt.Errorf("model: %w", err)
	} else if st.IsDir() {
		return fmt.Errorf("model %s is a directory, not a GGUF file", set.Model)
	}
	set.Engine.ChatTemplate = set.ChatTemplate
	if err := set.Validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: daemon.LogLevel(set.LogLevel)}))

	ul, err := daemon.Listen(set)
	if err != nil {
		return err
	}
	defer ul.Close()
	srv := daemon.New(nil, set, log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	served := make(chan error, 2)
	listeners := 1
	go func() { served <- srv.Serve(ctx, ul) }()
	log.Info("listening", "socket", ul.Addr().String())
	if set.TCPListen != "" {
		tl, err := daemon.ListenTCP(set)
		if err != nil {
			cancel()
			<-served
			return err
		}
		defer tl.Close()
		listeners++
		go func() { served <- srv.Serve(ctx, tl) }()
		log.Warn("also listening on TCP; TCP peers are not checked against allowed_uids", "addr", tl.Addr().String())
	}

	log.Info("loading model", "model", set.Model)
	eng, err := engine.Load(set.Model, set.Engine)
	if err != nil {
		cancel()
		for range listeners {
			<-served
		}
		return fmt.Errorf("loading the model: %w", err)
	}
	info := eng.Info()
	srv.SetBackend(eng)
	log.Info("ready", "model", info.Model, "arch", info.Arch, "kernels", info.Kernels, "threads", info.Threads, "context", info.ContextLength)

	var firstErr error
	for range listeners {
		if err := <-served; err != nil && firstErr == nil {
			firstErr = err
			cancel() // one listener failing stops the daemon
		}
	}
	if err := eng.Close(); err != nil {
		log.Warn("closing the engine", "err", err)
	}
	if firstErr != nil {
		return firstErr
	}
	log.Info("stopped")
	return nil
}
