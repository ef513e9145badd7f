// Command tbcount counts the guest instructions a program executed under
// qemu-user, from the log of `qemu-aarch64 -d in_asm,exec,nochain`: in_asm
// prints each translation block's instructions once, exec (with chaining
// off, so every block passes through the loop that logs) a line each time a
// block runs. The count is the sum over executed blocks of their size.
// qemu 7.2 as Debian builds it has no plugins, which would count directly.
//
//	qemu-aarch64-static -d in_asm,exec,nochain -D /dev/stderr prog 2>&1 >/dev/null | tbcount
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
)

func main() {
	n, blocks, unknown, err := count(bufio.NewReaderSize(os.Stdin, 1<<20))
	if err != nil {
		fmt.Fprintln(os.Stderr, "tbcount:", err)
		os.Exit(1)
	}
	fmt.Printf("%d instructions in %d blocks executed (%d of them never translated in the log)\n", n, blocks, unknown)
}

// count reads the log: "IN: sym" then "0xPC:  word  insn" lines make a
// block, ended by a blank line; "Trace N: 0xHOST [a/PC/b/c] sym" is one run
// of the block at PC. A block executed before any of its translation is
// logged (none, normally) counts as unknown.
func count(r *bufio.Reader) (insns, blocks, unknown uint64, err error) {
	size := map[uint64]uint64{}
	var cur uint64
	var curN uint64
	in := false
	for {
		line, rerr := r.ReadSlice('\n')
		if rerr == bufio.ErrBufferFull {
			// A line longer than the buffer: not one we parse.
			for rerr == bufio.ErrBufferFull {
				_, rerr = r.ReadSlice('\n')
			}
			continue
		}
		switch {
		case bytes.HasPrefix(line, []byte("Trace ")):
			i := bytes.IndexByte(line, '/')
			j := i + 1 + bytes.IndexByte(line[i+1:], '/')
			if i < 0 || j <= i {
				break
			}
			pc, perr := strconv.ParseUint(string(line[i+1:j]), 16, 64)
			if perr != nil {
				return 0, 0, 0, fmt.Errorf("bad trace line %q: %w", line, perr)
			}
			blocks++
			if n, ok := size[pc]; ok {
				insns += n
			} else {
				unknown++
			}
		case bytes.HasPrefix(line, []byte("IN:")):
			in, curN = true, 0
		case in && bytes.HasPrefix(line, []byte("0x")):
			k := bytes.IndexByte(line, ':')
			if k < 0 {
				break
			}
			pc, perr := strconv.ParseUint(string(line[2:k]), 16, 64)
			if perr != nil {
				return 0, 0, 0, fmt.Errorf("bad instruction line %q: %w", line, perr)
			}
			if curN == 0 {
				cur = pc
			}
			curN++
		case in && len(bytes.TrimSpace(line)) == 0:
			size[cur] = curN
			in = false
		}
		if rerr != nil {
			if in && curN > 0 {
				size[cur] = curN
			}
			if rerr.Error() == "EOF" {
				return insns, blocks, unknown, nil
			}
			return insns, blocks, unknown, rerr
		}
	}
}
