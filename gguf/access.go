package gguf

import "fmt"

// Keys returns the metadata keys in file order.
func (f *File) Keys() []string {
	keys := make([]string, len(f.KV))
	for i, kv := range f.KV {
		keys[i] = kv.Key
	}
	return keys
}

// Value returns the value stored under key.
func (f *File) Value(key string) (Value, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return Value{}, false
	}
	return f.KV[i].Value, true
}

// String returns the string stored under key; false if it is absent or not
// a string.
func (f *File) String(key string) (string, bool) {
	v, ok := f.Value(key)
	if !ok {
		return "", false
	}
	return v.Text()
}

// Uint returns the integer stored under key, of any integer type, if it is
// not negative; false if it is absent, negative or not an integer.
func (f *File) Uint(key string) (uint64, bool) {
	v, ok := f.Value(key)
	if !ok {
		return 0, false
	}
	return v.Uint()
}

// Float returns the float32, float64 or integer stored under key as a
// float64; false if it is absent or of another type.
func (f *File) Float(key string) (float64, bool) {
	v, ok := f.Value(key)
	if !ok {
		return 0, false
	}
	return v.Float()
}

// Bool returns the bool stored under key; false, false if it is absent or
// not a bool.
func (f *File) Bool(key string) (bool, bool) {
	v, ok := f.Value(key)
	if !ok {
		return false, false
	}
	return v.Bool()
}

func (f *File) array(key string) (Value, error) {
	v, ok := f.Value(key)
	if !ok {
		return Value{}, fmt.Errorf("gguf: key %q not found", key)
	}
	return v, nil
}

// Strings decodes the array of strings stored under key.
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.array(key)
	if err != nil {
		return nil, err
	}
	s, err := v.Strings()
	if err != nil {
		return nil, fmt.Errorf("gguf: key %q: %w", key, err)
	}
	return s, nil
}

// Float32s decodes the array of float32 (or float64) stored under key.
func (f *File) Float32s(key string) ([]float32, error) {
	v, err := f.array(key)
	if err != nil {
		return nil, err
	}
	s, err := v.Float32s()
	if err != nil {
		return nil, fmt.Errorf("gguf: key %q: %w", key, err)
	}
	return s, nil
}

// Int32s decodes the array of integers stored under key, widened or
// narrowed to int32 (failing if an element does not fit).
func (f *File) Int32s(key string) ([]int32, error) {
	v, err := f.array(key)
	if err != nil {
		return nil, err
	}
	s, err := v.Int32s()
	if err != nil {
		return nil, fmt.Errorf("gguf: key %q: %w", key, err)
	}
	return s, nil
}

// Tensor returns the tensor named name.
func (f *File) Tensor(name string) (*Tensor, bool) {
	i, ok := f.tensorIndex[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}
