// Package faults holds fault-injection and access tests for the edgelm daemon; it has no code
// of its own. Each test starts a real daemon (daemon.Listen, daemon.New, Serve) on a Unix socket
// in a temp dir with the real engine on a copy of the shared small model, injects one fault
// (a truncated model file, clients that vanish mid-stream, slowloris connections, malformed and
// oversized requests, more long sequences than the KV cache holds, callers of another uid) and
// checks that the daemon answers cleanly and that well-formed requests sent alongside succeed.
// docs/reliability.md records the results.
package faults
