//go:build race

package kernels

// raceEnabled: under the race detector sync.Pool drops a share of what is put back on purpose,
// so counting allocations of pooled buffers means nothing there.
const raceEnabled = true
