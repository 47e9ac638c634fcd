package tfc

// #include <stdlib.h>
// #include "tensorflow/c/c_api.h"
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	tf "github.com/wamuir/graft/tensorflow"
)

func cGraph(g *tf.Graph) *C.TF_Graph { return *(**C.TF_Graph)(unsafe.Pointer(g)) }

// UpdateEdge makes input index of dst read src instead of what it reads now
// (TF_UpdateEdge, which graft does not offer). The two must have the same
// type and compatible shapes; TensorFlow checks.
func UpdateEdge(g *tf.Graph, src tf.Output, dst *tf.Operation, index int) error {
	if g == nil || cGraph(g) == nil || src.Op == nil || dst == nil {
		return errors.New("update edge: nil graph or operation")
	}
	if index < 0 || index >= dst.NumInputs() {
		return fmt.Errorf("update edge: %s has no input %d", dst.Name(), index)
	}
	st := C.TF_NewStatus()
	defer C.TF_DeleteStatus(st)
	C.TF_UpdateEdge(cGraph(g), C.TF_Output{oper: cOperation(src.Op), index: C.int(src.Index)},
		C.TF_Input{oper: cOperation(dst), index: C.int(index)}, st)
	if C.TF_GetCode(st) != C.TF_OK {
		return fmt.Errorf("update edge: %s", C.GoString(C.TF_Message(st)))
	}
	return nil
}

// ScopeErr drops the Go stack trace graft's Scope appends to its errors: it
// helps nobody who runs tfcat.
func ScopeErr(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, " (Stacktrace:"); i >= 0 {
		return fmt.Errorf("%s", msg[:i])
	}
	return err
}

// NoGradient reports whether o, one of graft's Graph.AddGradients results,
// is the C API's "no gradient" (an input the outputs do not reach, or reach
// only through ops without one, such as Shape): graft wraps it as an
// operation without a node, whose methods would crash.
func NoGradient(o tf.Output) bool { return o.Op == nil || cOperation(o.Op) == nil }
