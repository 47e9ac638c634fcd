package tfc

// #include <stdlib.h>
// #include "tensorflow/c/c_api.h"
import "C"

import (
	"errors"
	"sync"
)

// Server is TensorFlow's in-process gRPC server (TF_NewServer), the engine
// of its distributed runtime: it hosts this task's devices for the sessions
// of the cluster. A started gRPC server cannot be stopped — TensorFlow's
// Stop is unimplemented and its destructor aborts on that — so a Server is
// never deleted: one per process, which exits when its work is done.
type Server struct {
	c      *C.TF_Server
	target string
}

var (
	serverMu sync.Mutex
	started  *Server
)

// ErrServerStarted is StartServer's error for a second server in a process.
var ErrServerStarted = errors.New("a TensorFlow server already runs in this process")

// StartServer creates and starts a server from a serialized ServerDef.
func StartServer(serverDef []byte) (*Server, error) {
	serverMu.Lock()
	defer serverMu.Unlock()
	if started != nil {
		return nil, ErrServerStarted
	}
	if len(serverDef) == 0 {
		return nil, errors.New("empty ServerDef")
	}
	st := C.TF_NewStatus()
	defer C.TF_DeleteStatus(st)
	buf := C.CBytes(serverDef)
	defer C.free(buf)
	s := C.TF_NewServer(buf, C.size_t(len(serverDef)), st)
	if C.TF_GetCode(st) != C.TF_OK {
		return nil, errors.New(C.GoString(C.TF_Message(st)))
	}
	C.TF_ServerStart(s, st)
	if C.TF_GetCode(st) != C.TF_OK {
		// Not started: deleting it is safe.
		msg := C.GoString(C.TF_Message(st))
		C.TF_DeleteServer(s)
		return nil, errors.New(msg)
	}
	started = &Server{c: s, target: C.GoString(C.TF_ServerTarget(s))}
	return started, nil
}

// Target is the session target that reaches this server, "grpc://host:port".
func (s *Server) Target() string { return s.target }
