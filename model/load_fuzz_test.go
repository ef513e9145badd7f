package model

import (
	"bytes"
	"testing"

	"edgelm/gguf"
	"edgelm/kernels"
	"edgelm/kvcache"
)

// FuzzLoad changes one metadata value of a small valid model (to another number, a float, a
// string, a bool, an array, or removes it) and optionally reshapes one tensor (its two dimensions
// swapped, or a dimension grown or shrunk with the data to match): Load must refuse the result
// with an error, or give a model that prefills and decodes a few tokens without panicking. A
// malformed file must never take the daemon down, at start-up or on a reload.
func FuzzLoad(f *testing.F) {
	for si := range shapes {
		f.Add(uint8(si), uint8(0), uint8(0), int64(0), uint8(0), int8(0))
	}
	f.Add(uint8(0), uint8(3), uint8(0), int64(0), uint8(0), int8(0))      // head_count 0
	f.Add(uint8(2), uint8(4), uint8(0), int64(3), uint8(0), int8(0))      // head_count_kv 3 of 4
	f.Add(uint8(0), uint8(5), uint8(0), int64(1<<40), uint8(0), int8(0))  // key_length huge
	f.Add(uint8(5), uint8(9), uint8(1), int64(-7), uint8(0), int8(0))     // a float where a count was
	f.Add(uint8(0), uint8(2), uint8(5), int64(0), uint8(0), int8(0))      // block_count removed
	f.Add(uint8(0), uint8(0), uint8(6), int64(0), uint8(4), int8(1))      // a tensor transposed
	f.Add(uint8(3), uint8(0), uint8(6), int64(0), uint8(7), int8(-32))    // a tensor shrunk
	f.Add(uint8(6), uint8(14), uint8(4), int64(2), uint8(0), int8(0))     // an array for a scalar
	f.Add(uint8(1), uint8(1), uint8(0), int64(65), uint8(0), int8(0))     // embedding_length off by one
	f.Add(uint8(4), uint8(7), uint8(0), int64(1<<31), uint8(12), int8(5)) // several at once
	f.Fuzz(func(t *testing.T, si, key, kind uint8, val int64, tensor uint8, delta int8) {
		s := shapes[int(si)%len(shapes)]
		orig := randomModel(t, s, 3)
		w := gguf.NewWriter()
		for i, kv := range orig.KV {
			if i != int(key)%len(orig.KV) || kind == 0 && val == 0 {
				w.SetValue(kv.Key, kv.Value)
				continue
			}
			switch kind % 7 {
			case 0:
				w.Set(kv.Key, uint32(val))
			case 1:
				w.Set(kv.Key, float32(val))
			case 2:
				w.Set(kv.Key, int64(val))
			case 3:
				w.Set(kv.Key, "x")
			case 4:
				w.Set(kv.Key, []uint32{uint32(val), 1})
			case 5: // removed
			case 6:
				w.Set(kv.Key, val&1 == 1)
			}
		}
		for i, tn := range orig.Tensors {
			dims, data := tn.Dims, tn.Data
			if i == int(tensor)%len(orig.Tensors) && kind%7 == 6 && delta != 0 {
				dims = append([]uint64(nil), dims...)
				switch {
				case delta == 1 && len(dims) == 2:
					dims[0], dims[1] = dims[1], dims[0]
				default:
					// Grow or shrink the last dimension by whole rows, the data to match.
					last := int64(dims[len(dims)-1]) + int64(delta)
					if last < 1 {
						last = 1
					}
					dims[len(dims)-1] = uint64(last)
					size, err := gguf.TensorSize(tn.Type, dims)
					if err != nil {
						return
					}
					data = make([]byte, size)
					copy(data, tn.Data)
				}
			}
			w.AddTensor(tn.Name, tn.Type, dims, data)
		}
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			return // the writer refused the change (e.g. an alignment key)
		}
		g, err := gguf.Parse(buf.Bytes())
		if err != nil {
			return
		}
		m, err := Load(g)
		if err != nil {
			return
		}
		pool := kernels.NewPool(2)
		defer pool.Close()
		r := NewRunner(m, pool)
		seq := kvcache.NewSeq(kvcache.Shape{Layers: m.Layers, KVHeads: m.KVHeads, HeadDim: m.HeadDim}, 8)
		logits := make([]float32, m.Vocab)
		b := &Batch{Tokens: []int32{1, 2, 3}, Pos: []int32{0, 1, 2}, Seqs: []*kvcache.Seq{seq, seq, seq}}
		if err := r.Forward(b, logits); err != nil {
			return
		}
		_ = r.Forward(&Batch{Tokens: []int32{4}, Pos: []int32{3}, Seqs: []*kvcache.Seq{seq}}, logits)
	})
}
