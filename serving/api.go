package serving

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/dataset"
	"github.com/tfcat/tfcat/savedmodel"
)

// What front ends other than REST's JSON (gRPC, KServe's v2 protocol) ask of a
// Server: its facts, and Predict under the same limits and batching as REST.

// Name is the model's name (Config.Name).
func (s *Server) Name() string { return s.cfg.Name }

// Version is the version served (Config.Version).
func (s *Server) Version() int64 { return s.cfg.Version }

// InputSize is the height, width and channels of the images the model takes.
func (s *Server) InputSize() (h, w, c int) { return s.h, s.w, s.c }

// NumClasses is the number of probabilities per image.
func (s *Server) NumClasses() int { return s.k }

// MaxInstances is the most images one request may hold (Config.MaxInstances).
func (s *Server) MaxInstances() int { return s.cfg.MaxInstances }

// Classes names the classes in label order (numbered when Config.Classes was
// nil). The slice is the caller's.
func (s *Server) Classes() []string { return slices.Clone(s.cfg.Classes) }

// Signature is the serving_default SignatureDef the metadata reports
// (Config.Signature, or the one an export of the model carries). It is the
// caller's.
func (s *Server) Signature() *corepb.SignatureDef {
	if s.cfg.Signature != nil {
		return proto.Clone(s.cfg.Signature).(*corepb.SignatureDef)
	}
	return savedmodel.ServingSignature(s.h, s.w, s.c, s.k)
}

// Input is one request's images for Predict: N of them, each a float tensor
// in X or an encoded image in Images.
type Input struct {
	// N is the number of images.
	N int
	// X holds N×H×W×C float32 values (each image in HWC order, already
	// preprocessed); nil when every image is encoded. Entries of images
	// given encoded are overwritten.
	X []float32
	// Images holds encoded images (JPEG, PNG or BMP) by position; a nil
	// entry is a tensor in X. Each is preprocessed as REST's b64 images
	// are: its header read first, refused over Config.MaxImagePixels, its
	// decode memory held from Config.DecodeMemory while it decodes.
	Images [][]byte
	// MessageBytes is the size of the request as received. It counts
	// against Config.MaxBodyBytes and is held from Config.DecodeMemory
	// until Predict returns, as a REST body is.
	MessageBytes int64
}

// Predict runs in's images through the model with other requests' (the same
// batcher as REST), within the same limits: MaxBodyBytes, MaxInstances, a
// request slot, DecodeMemory for the message, the tensor and each decode,
// the pixel limit, and RequestTimeout on top of ctx's own deadline. It
// returns N×NumClasses probabilities.
//
// Errors carry TensorFlow Serving's code, which ErrorCode reports:
// INVALID_ARGUMENT for a malformed input, an undecodable image or one over
// the pixel limit; RESOURCE_EXHAUSTED for a message over MaxBodyBytes, a
// request needing more than the whole memory budget, or one whose deadline
// passed while it waited for memory or a slot; DEADLINE_EXCEEDED when it
// passed while predicting; CANCELLED when ctx was cancelled; UNAVAILABLE
// after Close; INTERNAL when the model fails. Stats counts them as REST's.
func (s *Server) Predict(ctx context.Context, in Input) ([]float32, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	h := &held{s: s}
	defer h.release()
	if in.MessageBytes > s.cfg.MaxBodyBytes {
		s.rejected[rejectedLimit].Add(1)
		return nil, coded(corepb.Code_RESOURCE_EXHAUSTED, fmt.Errorf("the request of %d bytes exceeds the limit of %d", in.MessageBytes, s.cfg.MaxBodyBytes))
	}
	if err := s.checkInput(in); err != nil {
		return nil, coded(corepb.Code_INVALID_ARGUMENT, err)
	}
	// The message and the tensor in one acquire, before the slot: a request
	// never holds part of the budget while it waits for more (limits.go).
	size := s.h * s.w * s.c
	if err := h.take(ctx, in.MessageBytes+int64(in.N)*int64(size)*4); err != nil {
		return nil, s.budgetErr(err)
	}
	if err := s.slot(ctx, h); err != nil {
		return nil, s.budgetErr(err)
	}
	req := &request{n: in.N, x: in.X, images: in.Images}
	if req.x == nil {
		req.x = make([]float32, in.N*size)
	}
	if err := s.decodeImages(ctx, req, h); err != nil {
		switch {
		case errors.Is(err, errExhausted), errors.Is(err, errTooBig):
			return nil, s.budgetErr(err)
		case errors.Is(err, dataset.ErrTooLarge):
			s.rejected[rejectedLimit].Add(1)
		}
		return nil, coded(corepb.Code_INVALID_ARGUMENT, err)
	}
	probs, err := s.batch.predict(ctx, req.x, in.N)
	if err != nil {
		return nil, s.predictErr(parent, err)
	}
	return probs, nil
}

func (s *Server) checkInput(in Input) error {
	size := s.h * s.w * s.c
	switch {
	case in.N <= 0:
		return errors.New("the request holds no images")
	case in.N > s.cfg.MaxInstances:
		return fmt.Errorf("%d images in one request, more than the limit of %d", in.N, s.cfg.MaxInstances)
	case in.Images != nil && len(in.Images) != in.N:
		return fmt.Errorf("%d encoded images for %d images", len(in.Images), in.N)
	case in.X != nil && len(in.X) != in.N*size:
		return fmt.Errorf("%d values for %d images of %dx%dx%d", len(in.X), in.N, s.h, s.w, s.c)
	case in.X == nil && (in.Images == nil || slices.ContainsFunc(in.Images, func(b []byte) bool { return b == nil })):
		return errors.New("an image is neither a tensor nor encoded")
	}
	return nil
}

// budgetErr is a failed wait for memory or a request slot: RESOURCE_EXHAUSTED
// either way (REST tells 413 from 503).
func (s *Server) budgetErr(err error) error {
	if errors.Is(err, errTooBig) {
		s.rejected[rejectedLimit].Add(1)
	} else {
		s.rejected[rejectedBusy].Add(1)
	}
	return coded(corepb.Code_RESOURCE_EXHAUSTED, err)
}

// predictErr is a failed prediction; parent is the caller's context, to tell
// the server's deadline from the caller's.
func (s *Server) predictErr(parent context.Context, err error) error {
	switch {
	case errors.Is(err, errClosed):
		return coded(corepb.Code_UNAVAILABLE, err)
	case errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil:
		s.rejected[rejectedTimeout].Add(1)
		return coded(corepb.Code_DEADLINE_EXCEEDED, fmt.Errorf("the request's deadline of %v passed: %w", s.cfg.RequestTimeout, err))
	case errors.Is(err, context.DeadlineExceeded):
		return coded(corepb.Code_DEADLINE_EXCEEDED, fmt.Errorf("the request's deadline passed: %w", err))
	case errors.Is(err, context.Canceled):
		return coded(corepb.Code_CANCELLED, fmt.Errorf("the request was cancelled: %w", err))
	}
	return coded(corepb.Code_INTERNAL, err)
}

// codedError carries the TensorFlow Serving code of an error for ErrorCode.
type codedError struct {
	code corepb.Code
	err  error
}

func coded(code corepb.Code, err error) error { return &codedError{code, err} }

func (e *codedError) Error() string          { return e.err.Error() }
func (e *codedError) Unwrap() error          { return e.err }
func (e *codedError) ErrorCode() corepb.Code { return e.code }
