package tfc

// #include <stdlib.h>
// #include "tensorflow/c/c_api.h"
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	tf "github.com/wamuir/graft/tensorflow"
)

func init() {
	for _, typ := range []reflect.Type{reflect.TypeOf(tf.Session{}), reflect.TypeOf(tf.Operation{}), reflect.TypeOf(tf.Graph{})} {
		if typ.NumField() < 1 || typ.Field(0).Name != "c" || typ.Field(0).Type.Kind() != reflect.Pointer || typ.Field(0).Offset != 0 {
			panic(fmt.Sprintf("tfc: graft's %v layout changed; update internal/tfc", typ))
		}
	}
}

func cSession(s *tf.Session) *C.TF_Session       { return *(**C.TF_Session)(unsafe.Pointer(s)) }
func cOperation(o *tf.Operation) *C.TF_Operation { return *(**C.TF_Operation)(unsafe.Pointer(o)) }

// Runner runs one fixed signature — feeds, fetches, targets — on a session
// through TF_SessionRun with argument arrays made once in C memory, so that a
// run allocates nothing on the Go heap: what a training loop needs to be free
// of garbage at steady state. Fetched tensors are C memory too; read them with
// Scalar or CopyFloat32s, which free them. A Runner is not safe for concurrent
// use; its session must outlive it and stay open while it runs.
type Runner struct {
	sess         *C.TF_Session
	nIn, nOut    int
	nTargets     int
	inputs       *C.TF_Output
	inputValues  **C.TF_Tensor
	outputs      *C.TF_Output
	outputValues **C.TF_Tensor
	targets      **C.TF_Operation
	status       *C.TF_Status
	// ops keeps the graph's operations reachable while C holds their pointers.
	ops []*tf.Operation
}

// NewRunner prepares runs of sess that feed feeds, fetch fetches and run
// targets. Close it to free its C memory.
func NewRunner(sess *tf.Session, feeds, fetches []tf.Output, targets []*tf.Operation) (*Runner, error) {
	if sess == nil || cSession(sess) == nil {
		return nil, errors.New("runner: the session is closed")
	}
	r := &Runner{sess: cSession(sess), nIn: len(feeds), nOut: len(fetches), nTargets: len(targets), status: C.TF_NewStatus()}
	r.inputs = (*C.TF_Output)(calloc(len(feeds), C.sizeof_TF_Output))
	r.inputValues = (**C.TF_Tensor)(calloc(len(feeds), C.size_t(unsafe.Sizeof(uintptr(0)))))
	r.outputs = (*C.TF_Output)(calloc(len(fetches), C.sizeof_TF_Output))
	r.outputValues = (**C.TF_Tensor)(calloc(len(fetches), C.size_t(unsafe.Sizeof(uintptr(0)))))
	r.targets = (**C.TF_Operation)(calloc(len(targets), C.size_t(unsafe.Sizeof(uintptr(0)))))
	in := unsafe.Slice(r.inputs, max(len(feeds), 1))
	for i, f := range feeds {
		in[i] = C.TF_Output{oper: cOperation(f.Op), index: C.int(f.Index)}
		r.ops = append(r.ops, f.Op)
	}
	out := unsafe.Slice(r.outputs, max(len(fetches), 1))
	for i, f := range fetches {
		out[i] = C.TF_Output{oper: cOperation(f.Op), index: C.int(f.Index)}
		r.ops = append(r.ops, f.Op)
	}
	tg := unsafe.Slice(r.targets, max(len(targets), 1))
	for i, t := range targets {
		tg[i] = cOperation(t)
		r.ops = append(r.ops, t)
	}
	return r, nil
}

// calloc allocates n zeroed elements of size bytes (at least one, so that the
// pointer is never nil).
func calloc(n int, size C.size_t) unsafe.Pointer { return C.calloc(C.size_t(max(n, 1)), size) }

// Run feeds inputs (one per feed, in order; they stay the caller's) and runs
// the session. The fetched tensors wait in the runner until read.
func (r *Runner) Run(inputs []*tf.Tensor) error {
	if len(inputs) != r.nIn {
		return fmt.Errorf("runner: %d inputs for %d feeds", len(inputs), r.nIn)
	}
	r.FreeOutputs()
	vals := unsafe.Slice(r.inputValues, max(r.nIn, 1))
	for i, t := range inputs {
		if t == nil || cTensor(t) == nil {
			return fmt.Errorf("runner: input %d is nil or freed", i)
		}
		vals[i] = cTensor(t)
	}
	C.TF_SessionRun(r.sess, nil,
		r.inputs, r.inputValues, C.int(r.nIn),
		r.outputs, r.outputValues, C.int(r.nOut),
		r.targets, C.int(r.nTargets), nil, r.status)
	if C.TF_GetCode(r.status) != C.TF_OK {
		return fmt.Errorf("%s", C.GoString(C.TF_Message(r.status)))
	}
	return nil
}

func (r *Runner) output(i int) *C.TF_Tensor {
	if i < 0 || i >= r.nOut {
		return nil
	}
	return unsafe.Slice(r.outputValues, r.nOut)[i]
}

// Scalar is fetch i of the last run as a float32 scalar.
func (r *Runner) Scalar(i int) (float32, error) {
	t := r.output(i)
	if t == nil {
		return 0, fmt.Errorf("runner: no output %d", i)
	}
	if C.TF_TensorType(t) != C.TF_FLOAT || C.TF_TensorByteSize(t) != 4 {
		return 0, fmt.Errorf("runner: output %d is not a float32 scalar", i)
	}
	return *(*float32)(C.TF_TensorData(t)), nil
}

// CopyFloat32s copies fetch i of the last run, a float32 tensor, into dst and
// returns the number of values; dst must be large enough.
func (r *Runner) CopyFloat32s(i int, dst []float32) (int, error) {
	t := r.output(i)
	if t == nil {
		return 0, fmt.Errorf("runner: no output %d", i)
	}
	if C.TF_TensorType(t) != C.TF_FLOAT {
		return 0, fmt.Errorf("runner: output %d is not float32", i)
	}
	n := int(C.TF_TensorByteSize(t)) / 4
	if n > len(dst) {
		return 0, fmt.Errorf("runner: output %d has %d values, room for %d", i, n, len(dst))
	}
	if n > 0 {
		copy(dst, unsafe.Slice((*float32)(C.TF_TensorData(t)), n))
	}
	return n, nil
}

// FreeOutputs frees the fetched tensors of the last run (Run and Close do it
// too).
func (r *Runner) FreeOutputs() {
	if r.outputValues == nil {
		return
	}
	vals := unsafe.Slice(r.outputValues, max(r.nOut, 1))
	for i := range r.nOut {
		if vals[i] != nil {
			C.TF_DeleteTensor(vals[i])
			vals[i] = nil
		}
	}
}

// Close frees the runner's C memory. It does not close the session.
func (r *Runner) Close() {
	if r == nil || r.status == nil {
		return
	}
	r.FreeOutputs()
	for _, p := range []unsafe.Pointer{unsafe.Pointer(r.inputs), unsafe.Pointer(r.inputValues), unsafe.Pointer(r.outputs), unsafe.Pointer(r.outputValues), unsafe.Pointer(r.targets)} {
		C.free(p)
	}
	C.TF_DeleteStatus(r.status)
	*r = Runner{}
}

// RunTraced is Run with TensorFlow's tracing: runOptions is a serialized
// RunOptions (such as one asking for FULL_TRACE), and the serialized
// RunMetadata TensorFlow fills — the step stats — is returned. It allocates,
// unlike Run; it is for profiling one run.
func (r *Runner) RunTraced(inputs []*tf.Tensor, runOptions []byte) ([]byte, error) {
	if len(inputs) != r.nIn {
		return nil, fmt.Errorf("runner: %d inputs for %d feeds", len(inputs), r.nIn)
	}
	r.FreeOutputs()
	vals := unsafe.Slice(r.inputValues, max(r.nIn, 1))
	for i, t := range inputs {
		if t == nil || cTensor(t) == nil {
			return nil, fmt.Errorf("runner: input %d is nil or freed", i)
		}
		vals[i] = cTensor(t)
	}
	raw := C.CBytes(runOptions)
	opts := C.TF_NewBufferFromString(raw, C.size_t(len(runOptions))) // a copy
	C.free(raw)
	defer C.TF_DeleteBuffer(opts)
	meta := C.TF_NewBuffer()
	defer C.TF_DeleteBuffer(meta)
	C.TF_SessionRun(r.sess, opts,
		r.inputs, r.inputValues, C.int(r.nIn),
		r.outputs, r.outputValues, C.int(r.nOut),
		r.targets, C.int(r.nTargets), meta, r.status)
	if C.TF_GetCode(r.status) != C.TF_OK {
		return nil, fmt.Errorf("%s", C.GoString(C.TF_Message(r.status)))
	}
	return C.GoBytes(meta.data, C.int(meta.length)), nil
}
