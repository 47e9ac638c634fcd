package serving

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"

	"github.com/tfcat/tfcat/checkpoint"
)

// ModelSpec names what a request asks for, as TensorFlow Serving's ModelSpec
// does: a model, and a version number or a version label (neither: the
// latest version available).
type ModelSpec struct {
	Name    string
	Version int64  // 0: not given
	Label   string // "": not given
}

func (m ModelSpec) String() string {
	switch {
	case m.Version != 0:
		return fmt.Sprintf("Specific(%s, %d)", m.Name, m.Version)
	case m.Label != "":
		return fmt.Sprintf("Label(%s, %s)", m.Name, m.Label)
	}
	return fmt.Sprintf("Latest(%s)", m.Name)
}

// Models is what the front ends (REST, gRPC, KServe's v2 protocol) ask for the
// Server of a model version. A version acquired is not closed before its
// release is called, so a request finishes on the version it started on.
type Models interface {
	// Acquire returns the Server answering for spec and its version
	// number. release must be called once the request is done. An
	// unknown model, version or label is a *NotFoundError.
	Acquire(spec ModelSpec) (srv *Server, version int64, release func(), err error)
	// Status reports a model's versions (only spec.Version's when given),
	// oldest first. An unknown model is a *NotFoundError.
	Status(spec ModelSpec) ([]VersionStatus, error)
	// Names lists the models served, sorted.
	Names() []string
}

// VersionState is a version's place in its life, with TensorFlow Serving's
// ModelVersionStatus.State numbers.
type VersionState int

const (
	StateUnknown   VersionState = 0
	StateStart     VersionState = 10
	StateLoading   VersionState = 20
	StateAvailable VersionState = 30
	StateUnloading VersionState = 40
	StateEnd       VersionState = 50
)

func (s VersionState) String() string {
	switch s {
	case StateStart:
		return "START"
	case StateLoading:
		return "LOADING"
	case StateAvailable:
		return "AVAILABLE"
	case StateUnloading:
		return "UNLOADING"
	case StateEnd:
		return "END"
	}
	return "UNKNOWN"
}

// VersionStatus is one version's state; Err says why a version that failed to
// load (StateEnd) did.
type VersionStatus struct {
	Version int64
	State   VersionState
	Err     error
}

// NotFoundError is an unknown model, version or label: 404 on REST, NOT_FOUND
// on gRPC. Its message is TensorFlow Serving's.
type NotFoundError struct{ Msg string }

func (e *NotFoundError) Error() string { return e.Msg }

// NotFound is TensorFlow Serving's error for a servable it does not have:
// "Servable not found for request: Latest(NAME)", or for an unknown label
// "Unrecognized servable version label: L".
func NotFound(spec ModelSpec) *NotFoundError { return notFound(spec) }

func notFound(spec ModelSpec) *NotFoundError {
	if spec.Label != "" && spec.Version == 0 {
		return &NotFoundError{"Unrecognized servable version label: " + spec.Label}
	}
	return &NotFoundError{"Servable not found for request: " + spec.String()}
}

// One returns the Models of a single Server: its Config.Name at its
// Config.Version, always available until it is closed (tfcat serve --model).
func One(srv *Server) Models { return one{srv} }

type one struct{ s *Server }

func (o one) Acquire(spec ModelSpec) (*Server, int64, func(), error) {
	if spec.Name != o.s.cfg.Name || (spec.Version != 0 && spec.Version != o.s.cfg.Version) || spec.Label != "" {
		return nil, 0, nil, notFound(spec)
	}
	return o.s, o.s.cfg.Version, func() {}, nil
}

func (o one) Status(spec ModelSpec) ([]VersionStatus, error) {
	if spec.Name != o.s.cfg.Name || (spec.Label != "" && spec.Version == 0) {
		return nil, notFound(spec)
	}
	if spec.Version != 0 && spec.Version != o.s.cfg.Version {
		return nil, &NotFoundError{"Could not find version " + strconv.FormatInt(spec.Version, 10) + " of model " + spec.Name}
	}
	state := StateAvailable
	select {
	case <-o.s.closed:
		state = StateUnloading
	default:
	}
	return []VersionStatus{{Version: o.s.cfg.Version, State: state}}, nil
}

func (o one) Names() []string { return []string{o.s.cfg.Name} }

// ErrorCode is the TensorFlow (and gRPC: the numbers are the same) error code
// of a version's failure, as status replies carry it: OK for nil, the code an
// error reports through an ErrorCode() method (errors.As), NOT_FOUND for an
// unknown servable or a missing file, INVALID_ARGUMENT for a graph refused by
// the op allowlist, UNKNOWN otherwise.
func ErrorCode(err error) corepb.Code {
	var coded interface{ ErrorCode() corepb.Code }
	var nf *NotFoundError
	switch {
	case err == nil:
		return corepb.Code_OK
	case errors.As(err, &coded):
		return coded.ErrorCode()
	case errors.As(err, &nf), errors.Is(err, fs.ErrNotExist):
		return corepb.Code_NOT_FOUND
	case errors.Is(err, checkpoint.ErrUntrustedGraph):
		return corepb.Code_INVALID_ARGUMENT
	}
	return corepb.Code_UNKNOWN
}
