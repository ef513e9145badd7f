package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"edgelm/gguf"
	"edgelm/internal/testshared"
	"edgelm/model"
)

// tinyModel writes the tiny synthetic shape with `edgelm synth` and returns its path.
func tinyModel(t *testing.T, typ string) string {
	t.Helper()
	vocab := testshared.Path(t, "vocab", "ggml-vocab-llama-spm.gguf")
	path := filepath.Join(t.TempDir(), "tiny-"+typ+".gguf")
	var out bytes.Buffer
	if err := synthCmd([]string{"--shape", "tiny", "--type", typ, "--out", path, "--vocab", vocab, "--seed", "5"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), path) {
		t.Errorf("synth printed %q, want the file name", out.String())
	}
	return path
}

func TestSynthCmd(t *testing.T) {
	path := tinyModel(t, "q8_0")
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := model.Load(f); err != nil {
		t.Fatal(err)
	}
	if ft, _ := f.Uint("general.file_type"); ft != 7 {
		t.Errorf("general.file_type %d, want 7 (MOSTLY_Q8_0)", ft)
	}
	for _, args := range [][]string{
		{"--shape", "tiny"},
		{"--shape", "nope", "--out", "x"},
		{"--shape", "tiny", "--type", "q5_1", "--out", "x"},
	} {
		if err := synthCmd(args, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("synth %q: %v, want a usage error", args, err)
		}
	}
}

// TestBenchOutput runs the bench on the tiny shape and parses both outputs.
func TestBenchOutput(t *testing.T) {
	path := tinyModel(t, "q4_0")
	var table bytes.Buffer
	if err := benchCmd([]string{"--model", path, "-p", "8", "-n", "4", "-r", "2", "-t", "2"}, &table, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("table has %d lines, want header, rule and 2 rows:\n%s", len(lines), table.String())
	}
	if lines[0] != "| model | size | params | backend | threads | test | t/s |" {
		t.Errorf("header %q", lines[0])
	}
	row := regexp.MustCompile(`^\| llama \S+ Q4_0 \| [0-9.]+ MiB \| [0-9.]+ M \| CPU \S+ \| 2 \| (pp8|tg4) \| ([0-9.]+) ± ([0-9.]+) \|$`)
	for i, want := range []string{"pp8", "tg4"} {
		m := row.FindStringSubmatch(lines[2+i])
		if m == nil || m[1] != want {
			t.Errorf("row %q does not match %s", lines[2+i], row)
			continue
		}
		if tps, _ := strconv.ParseFloat(m[2], 64); !(tps > 0) {
			t.Errorf("%s: %v t/s", want, tps)
		}
	}

	var js, errs bytes.Buffer
	if err := benchCmd([]string{"--model", path, "-p", "8", "-n", "4", "-r", "2", "--json"}, &js, &errs); err != nil {
		t.Fatal(err)
	}
	var rs []struct {
		Test     string    `json:"test"`
		TPS      float64   `json:"tps"`
		Stddev   float64   `json:"stddev"`
		Samples  []float64 `json:"samples"`
		ReadGBps float64   `json:"read_gbps"`
	}
	if err := json.Unmarshal(js.Bytes(), &rs); err != nil {
		t.Fatalf("%v in %s", err, js.String())
	}
	if len(rs) != 2 || rs[0].Test != "pp8" || rs[1].Test != "tg4" {
		t.Fatalf("tests %+v, want pp8 then tg4", rs)
	}
	for _, r := range rs {
		if len(r.Samples) != 2 || !(r.TPS > 0) || r.Stddev < 0 {
			t.Errorf("%+v", r)
		}
		// The mean is the mean of the samples (computed here independently).
		if m := (r.Samples[0] + r.Samples[1]) / 2; abs(m-r.TPS) > 1e-9*m {
			t.Errorf("%s: tps %v, mean of samples %v", r.Test, r.TPS, m)
		}
	}
	// The decode test carries the bandwidth of the moment, and stderr sets the two side by side.
	if rs[0].ReadGBps != 0 || !(rs[1].ReadGBps > 0) {
		t.Errorf("read_gbps: pp8 %v (want none), tg4 %v (want > 0)", rs[0].ReadGBps, rs[1].ReadGBps)
	}
	if !regexp.MustCompile(`tg4 read [0-9.]+ GB/s of weights .* a plain read of them with \d+ threads between the runs: [0-9.]+ GB/s \(\d+ %\)`).MatchString(errs.String()) {
		t.Errorf("stderr has no bandwidth line:\n%s", errs.String())
	}
	js.Reset()
	if err := benchCmd([]string{"--model", path, "-p", "0", "-n", "2", "-r", "1", "--json", "--no-read"}, &js, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(js.String(), "read_gbps") {
		t.Errorf("--no-read still reads: %s", js.String())
	}
	// At a depth the tests carry llama-bench's names, and run (the cache holds depth + n).
	js.Reset()
	if err := benchCmd([]string{"--model", path, "-p", "4", "-n", "2", "-d", "5", "-r", "1", "--json", "--no-read"}, &js, io.Discard); err != nil {
		t.Fatal(err)
	}
	rs = nil
	if err := json.Unmarshal(js.Bytes(), &rs); err != nil {
		t.Fatalf("%v in %s", err, js.String())
	}
	if len(rs) != 2 || rs[0].Test != "pp4 @ d5" || rs[1].Test != "tg2 @ d5" || !(rs[0].TPS > 0) || !(rs[1].TPS > 0) {
		t.Errorf("at depth 5: %+v", rs)
	}
	// Bad counts: a clear, short error (not the options with the weights in them), and a depth
	// beyond the model's context refused before anything is allocated or run.
	for _, args := range [][]string{{"-d", "-1"}, {"-p", "-3"}, {"-d", "2000000000"}} {
		err := benchCmd(append([]string{"--model", path, "-n", "2", "-r", "1"}, args...), io.Discard, io.Discard)
		if err == nil || len(err.Error()) > 200 || !strings.Contains(err.Error(), "bench: ") {
			t.Errorf("%v: error %.300v", args, err)
		}
	}
	if err := benchCmd([]string{"--model", path, "-n", "2", "-r", "1", "-d", "2000000000"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "context") {
		t.Errorf("a depth beyond the context: %v", err)
	}
	if err := benchCmd([]string{"-p", "8"}, io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("no model: %v, want a usage error", err)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestQuantizeCmd quantizes the shared F32 model through the command and compares the result with
// llama-quantize's file byte for byte, tensor data included (metadata order differs: see quantize).
func TestQuantizeCmd(t *testing.T) {
	src := testshared.Path(t, "models", "aidreams260K-f32.gguf")
	ref := testshared.Path(t, "models", "aidreams260K-q8_0.gguf")
	out := filepath.Join(t.TempDir(), "q8.gguf")
	var stdout bytes.Buffer
	if err := quantizeCmd([]string{src, out, "q8_0"}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "verified") {
		t.Errorf("output %q", stdout.String())
	}
	a, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := gguf.Open(ref)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ad := a.Mapping().Bytes()[a.DataOffset:]
	bd := b.Mapping().Bytes()[b.DataOffset:]
	if !bytes.Equal(ad, bd) {
		t.Errorf("tensor data section differs from llama-quantize's (%d vs %d bytes)", len(ad), len(bd))
	}
	if err := quantizeCmd([]string{src, out, "q5_0"}, io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("q5_0: %v, want a usage error", err)
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}
	// A K mix of an already quantized file needs --allow-requantize, as llama-quantize's does.
	k := filepath.Join(t.TempDir(), "k.gguf")
	if err := quantizeCmd([]string{ref, k, "q4_k_m"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--allow-requantize") {
		t.Errorf("requantizing without the flag: %v", err)
	}
	stdout.Reset()
	if err := quantizeCmd([]string{"--allow-requantize", ref, k, "q4_k_m"}, &stdout, io.Discard); err != nil || !strings.Contains(stdout.String(), "verified") {
		t.Errorf("q4_k_m with --allow-requantize: %v, output %q", err, stdout.String())
	}
}

// TestBenchInfoMix: a K-quant mix is named as llama-bench names it, not by its largest tensor type
// (tinydoc-q4_k_m holds more Q6_K bytes than Q4_K).
func TestBenchInfoMix(t *testing.T) {
	f, err := gguf.Open(testshared.Path(t, "models", "tinydoc-q4_k_m.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := benchInfo(f, m, 1).Model; got != "llama 20M Q4_K - Medium" {
		t.Errorf("model column %q, want %q", got, "llama 20M Q4_K - Medium")
	}
}
