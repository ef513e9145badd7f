package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// ValueType is the type of a metadata value (gguf_type).
type ValueType uint32

// The GGUF metadata value types.
const (
	ValueUint8   ValueType = 0
	ValueInt8    ValueType = 1
	ValueUint16  ValueType = 2
	ValueInt16   ValueType = 3
	ValueUint32  ValueType = 4
	ValueInt32   ValueType = 5
	ValueFloat32 ValueType = 6
	ValueBool    ValueType = 7
	ValueString  ValueType = 8
	ValueArray   ValueType = 9
	ValueUint64  ValueType = 10
	ValueInt64   ValueType = 11
	ValueFloat64 ValueType = 12
)

var valueTypeNames = [...]string{
	"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
	"bool", "string", "array", "uint64", "int64", "float64",
}

// String is the GGUF spec's lower-case name ("uint32", "string", "array").
func (t ValueType) String() string {
	if uint64(t) < uint64(len(valueTypeNames)) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

// size is the encoded size of a fixed-size value type, 0 for string and
// array, -1 for unknown types.
func (t ValueType) size() int {
	switch t {
	case ValueUint8, ValueInt8, ValueBool:
		return 1
	case ValueUint16, ValueInt16:
		return 2
	case ValueUint32, ValueInt32, ValueFloat32:
		return 4
	case ValueUint64, ValueInt64, ValueFloat64:
		return 8
	case ValueString, ValueArray:
		return 0
	}
	return -1
}

// minSize is the fewest bytes one encoded value of type t can take: a
// string is at least its 8-byte length, an array its 4-byte element type and
// 8-byte count. Counts read from a file are checked against it before
// anything is allocated or walked.
func (t ValueType) minSize() uint64 {
	switch t {
	case ValueString:
		return 8
	case ValueArray:
		return 12
	}
	return uint64(t.size())
}

func (t ValueType) isInt() bool {
	switch t {
	case ValueUint8, ValueInt8, ValueUint16, ValueInt16, ValueUint32, ValueInt32, ValueUint64, ValueInt64:
		return true
	}
	return false
}

// Value is one metadata value. Scalars and arrays alike keep their encoded
// bytes (a view into the parsed data, valid as long as it is); arrays are
// decoded on demand by the accessors, so a 50000-token vocabulary costs
// nothing until asked for.
//
// The encoding kept in raw is the GGUF encoding after the type tag: the
// little-endian bytes of a number, the bytes of a string (without its length
// prefix), or an array's elements (without its element type and count).
type Value struct {
	Type  ValueType // the value's type
	Elem  ValueType // element type, when Type is ValueArray
	Count uint64    // number of elements, when Type is ValueArray
	str   string    // copy of a scalar string
	raw   []byte
}

// Raw returns the value's encoded bytes as described on Value. The slice
// must not be modified.
func (v Value) Raw() []byte { return v.raw }

// IsArray reports whether v is an array.
func (v Value) IsArray() bool { return v.Type == ValueArray }

// Uint returns an integer value of any width or signedness as a uint64, if
// it is not negative.
func (v Value) Uint() (uint64, bool) {
	if !v.Type.isInt() || !v.whole() {
		return 0, false
	}
	u, neg := scalarInt(v.Type, v.raw)
	if neg {
		return 0, false
	}
	return u, true
}

// Int returns an integer value of any width or signedness as an int64, if it
// fits.
func (v Value) Int() (int64, bool) {
	if !v.Type.isInt() || !v.whole() {
		return 0, false
	}
	u, neg := scalarInt(v.Type, v.raw)
	if !neg && u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// Float returns a float32 or float64 value, or an integer value converted
// to float64.
func (v Value) Float() (float64, bool) {
	if !v.whole() {
		return 0, false
	}
	switch v.Type {
	case ValueFloat32:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(v.raw))), true
	case ValueFloat64:
		return math.Float64frombits(binary.LittleEndian.Uint64(v.raw)), true
	}
	if !v.Type.isInt() {
		return 0, false
	}
	u, neg := scalarInt(v.Type, v.raw)
	if neg {
		return float64(int64(u)), true
	}
	return float64(u), true
}

// Bool returns a bool value. Any non-zero byte is true.
func (v Value) Bool() (bool, bool) {
	if v.Type != ValueBool || !v.whole() {
		return false, false
	}
	return v.raw[0] != 0, true
}

// Text returns a string value.
func (v Value) Text() (string, bool) {
	if v.Type != ValueString {
		return "", false
	}
	return v.str, true
}

// whole reports whether a fixed-size scalar has all its bytes; only a
// hand-made (zero) Value lacks them.
func (v Value) whole() bool {
	n := v.Type.size()
	return n > 0 && len(v.raw) >= n
}

// scalarInt decodes an integer of type t from b. For signed types the
// result is the two's complement bit pattern sign-extended to 64 bits, and
// neg reports a negative value.
func scalarInt(t ValueType, b []byte) (u uint64, neg bool) {
	switch t {
	case ValueUint8:
		return uint64(b[0]), false
	case ValueInt8:
		x := int64(int8(b[0]))
		return uint64(x), x < 0
	case ValueUint16:
		return uint64(binary.LittleEndian.Uint16(b)), false
	case ValueInt16:
		x := int64(int16(binary.LittleEndian.Uint16(b)))
		return uint64(x), x < 0
	case ValueUint32:
		return uint64(binary.LittleEndian.Uint32(b)), false
	case ValueInt32:
		x := int64(int32(binary.LittleEndian.Uint32(b)))
		return uint64(x), x < 0
	case ValueUint64:
		return binary.LittleEndian.Uint64(b), false
	case ValueInt64:
		x := int64(binary.LittleEndian.Uint64(b))
		return uint64(x), x < 0
	}
	return 0, false
}

var errNotArray = errors.New("not an array")

func (v Value) arrayOf(want string) error {
	if v.Type != ValueArray {
		return fmt.Errorf("value is %s, want array of %s", v.Type, want)
	}
	return nil
}

// Strings decodes an array of strings.
func (v Value) Strings() ([]string, error) {
	if err := v.arrayOf("string"); err != nil {
		return nil, err
	}
	if v.Elem != ValueString {
		return nil, fmt.Errorf("array of %s, want array of string", v.Elem)
	}
	// The parser checked that Count strings fit in raw, so Count is bounded
	// by len(raw)/8; the checks below only guard hand-made Values.
	if v.Count > uint64(len(v.raw))/8 {
		return nil, fmt.Errorf("array of %d strings does not fit in %d bytes", v.Count, len(v.raw))
	}
	out := make([]string, v.Count)
	b := v.raw
	for i := range out {
		if len(b) < 8 {
			return nil, fmt.Errorf("string %d: truncated", i)
		}
		n := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if n > uint64(len(b)) {
			return nil, fmt.Errorf("string %d: length %d past end of array", i, n)
		}
		out[i] = string(b[:n])
		b = b[n:]
	}
	return out, nil
}

// Float32s decodes an array of float32 (or float64, narrowed).
func (v Value) Float32s() ([]float32, error) {
	if err := v.arrayOf("float32"); err != nil {
		return nil, err
	}
	size := v.Elem.size()
	if (v.Elem != ValueFloat32 && v.Elem != ValueFloat64) || v.Count > uint64(len(v.raw)/size) {
		return nil, fmt.Errorf("array of %s, want array of float32", v.Elem)
	}
	out := make([]float32, v.Count)
	for i := range out {
		if v.Elem == ValueFloat32 {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(v.raw[4*i:]))
		} else {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(v.raw[8*i:])))
		}
	}
	return out, nil
}

// Int32s decodes an array of any integer type into int32s, failing if an
// element does not fit.
func (v Value) Int32s() ([]int32, error) {
	if err := v.arrayOf("int32"); err != nil {
		return nil, err
	}
	size := v.Elem.size()
	if !v.Elem.isInt() || v.Count > uint64(len(v.raw)/size) {
		return nil, fmt.Errorf("array of %s, want array of integers", v.Elem)
	}
	out := make([]int32, v.Count)
	for i := range out {
		u, neg := scalarInt(v.Elem, v.raw[i*size:])
		x := int64(u)
		if (!neg && u > math.MaxInt32) || (neg && x < math.MinInt32) {
			return nil, fmt.Errorf("element %d (%d) does not fit in int32", i, x)
		}
		out[i] = int32(x)
	}
	return out, nil
}

// Array decodes the elements of an array (of any element type, including
// nested arrays) into Values that view the same bytes. It allocates a Value
// per element, so numeric arrays are better read with the typed accessors.
func (v Value) Array() ([]Value, error) {
	if v.Type != ValueArray {
		return nil, errNotArray
	}
	d := decoder{buf: v.raw}
	if err := d.fits(v.Count, v.Elem.minSize(), "array elements"); err != nil {
		return nil, err
	}
	out := make([]Value, v.Count)
	for i := range out {
		e, err := d.value(v.Elem, 1)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		if e.Type == ValueString {
			e.str = string(e.raw)
		}
		out[i] = e
	}
	return out, nil
}

// String formats the value briefly for listings such as `edgelm info`:
// numbers and bools as Go prints them, strings quoted and cut to 64 bytes,
// and arrays summarized as "[512 × string]".
func (v Value) String() string {
	switch v.Type {
	case ValueArray:
		return fmt.Sprintf("[%d × %s]", v.Count, v.Elem)
	case ValueString:
		s := v.str
		if len(s) > 64 {
			return strconv.Quote(s[:64]) + fmt.Sprintf("... (%d bytes)", len(s))
		}
		return strconv.Quote(s)
	}
	if b, ok := v.Bool(); ok {
		return strconv.FormatBool(b)
	}
	if f, ok := v.Float(); ok && v.Type == ValueFloat32 {
		return strconv.FormatFloat(f, 'g', -1, 32)
	} else if ok && v.Type == ValueFloat64 {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	if v.Type.isInt() && v.whole() {
		u, neg := scalarInt(v.Type, v.raw)
		if neg {
			return strconv.FormatInt(int64(u), 10)
		}
		return strconv.FormatUint(u, 10)
	}
	return fmt.Sprintf("<invalid %s>", v.Type)
}
