// Package tfc reaches below graft's Tensor type for the two things graft does not
// offer: freeing a tensor's C memory now rather than at garbage collection, and
// writing into a tensor's buffer in place. Both rely on graft v0.10.0 keeping the
// *C.TF_Tensor as the first field of tf.Tensor; init verifies that layout.
package tfc

// #include <stdlib.h>
// #include "tensorflow/c/c_api.h"
import "C"

import (
	"fmt"
	"reflect"
	"runtime"
	"unsafe"

	tf "github.com/wamuir/graft/tensorflow"
)

func init() {
	typ := reflect.TypeOf(tf.Tensor{})
	if typ.NumField() < 1 || typ.Field(0).Name != "c" || typ.Field(0).Type.Kind() != reflect.Pointer || typ.Field(0).Offset != 0 {
		panic(fmt.Sprintf("tfc: graft's tf.Tensor layout changed (%v); update internal/tfc", typ))
	}
}

func cTensor(t *tf.Tensor) *C.TF_Tensor {
	return *(**C.TF_Tensor)(unsafe.Pointer(t))
}

// Free releases t's C memory at once. t must not be used afterwards. Free of nil
// or of an already freed tensor does nothing.
func Free(t *tf.Tensor) {
	if t == nil {
		return
	}
	p := (**C.TF_Tensor)(unsafe.Pointer(t))
	if *p == nil {
		return
	}
	runtime.SetFinalizer(t, nil)
	C.TF_DeleteTensor(*p)
	*p = nil
}

// FreeAll frees every tensor in ts.
func FreeAll(ts []*tf.Tensor) {
	for _, t := range ts {
		Free(t)
	}
}

// Bytes is t's own buffer (not a copy): writes change the tensor. It is valid
// until t is freed.
func Bytes(t *tf.Tensor) []byte {
	c := cTensor(t)
	if c == nil {
		return nil
	}
	p := C.TF_TensorData(c)
	n := int(C.TF_TensorByteSize(c))
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(p), n)
}

// Float32s is t's buffer viewed as float32 values; t must be of type Float.
func Float32s(t *tf.Tensor) ([]float32, error) {
	if t.DataType() != tf.Float {
		return nil, fmt.Errorf("tensor is %v, not float32", t.DataType())
	}
	b := Bytes(t)
	if len(b) == 0 {
		return nil, nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4), nil
}

// NewFloat32 allocates a float32 tensor of the given shape, filled with zeros.
func NewFloat32(shape ...int64) (*tf.Tensor, error) {
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension in shape %v", shape)
		}
	}
	return tf.ReadTensor(tf.Float, shape, zeros{})
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// AllOpList returns the serialized OpList of every op registered in the linked
// TensorFlow library (TF_GetAllOpList).
func AllOpList() []byte {
	buf := C.TF_GetAllOpList()
	defer C.TF_DeleteBuffer(buf)
	return C.GoBytes(buf.data, C.int(buf.length))
}
