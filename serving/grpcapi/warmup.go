package grpcapi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/serving"
)

// WarmupFile is where a version folder keeps its warm-up requests, as in
// TensorFlow Serving.
const WarmupFile = "assets.extra/tf_serving_warmup_requests"

// MaxWarmupRecords is the most records a warm-up file may hold, TensorFlow
// Serving's limit; a file with more fails the warm-up.
const MaxWarmupRecords = 1000

// maxWarmupRecordBytes bounds one record's data (a serialized PredictionLog),
// read before it is allocated: REST's and gRPC's message limit.
const maxWarmupRecordBytes = serving.DefaultMaxBodyBytes

// WarmUp replays the warm-up requests of versionDir
// (assets.extra/tf_serving_warmup_requests) against srv, as TensorFlow
// Serving does before a version serves (--num_request_iterations_for_warmup
// 1): each request once, in order. It returns the number of requests that
// succeeded; a folder without the file has none (0, nil).
//
// The file is a TFRecord file of tensorflow.serving.PredictionLog messages;
// the CRC-32C of each record's length and data is verified. A predict_log's
// request runs through Predict's path (the same checks, limits and batcher),
// a classify_log's or multi_inference_log's through Classify's and
// MultiInference's; regress_log is refused as Regress refuses it, and
// session_run_log is refused. A request's model name and version are the
// version's own, whatever the file says (TensorFlow Serving's way); its
// signature name is checked.
//
// An error names the file, the record (numbered from 1) and what is wrong:
// a bad CRC, a truncated record, a message that does not parse, more than
// MaxWarmupRecords records, or the request's own error. ctx bounds the
// whole replay.
func WarmUp(ctx context.Context, srv *serving.Server, versionDir string) (requests int, err error) {
	path := filepath.Join(versionDir, filepath.FromSlash(WarmupFile))
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("warm-up: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return 0, fmt.Errorf("warm-up: %w", err)
	} else if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("warm-up: %s is not a regular file", path)
	}
	svc := &service{models: warmupModels{srv}}
	r := &recordReader{r: f}
	for {
		data, err := r.next()
		if err == io.EOF {
			return requests, nil
		}
		if err != nil {
			return requests, fmt.Errorf("warm-up: %s: record %d: %w", path, requests+1, err)
		}
		if requests == MaxWarmupRecords {
			return requests, fmt.Errorf("warm-up: %s: more than %d records (TensorFlow Serving's limit)", path, MaxWarmupRecords)
		}
		if err := ctx.Err(); err != nil {
			return requests, fmt.Errorf("warm-up: %s: record %d: %w", path, requests+1, err)
		}
		if err := replay(ctx, svc, srv, data); err != nil {
			return requests, fmt.Errorf("warm-up: %s: record %d: %w", path, requests+1, err)
		}
		requests++
	}
}

// replay parses one PredictionLog and runs its request.
func replay(ctx context.Context, svc *service, srv *serving.Server, data []byte) error {
	var log pb.PredictionLog
	if err := proto.Unmarshal(data, &log); err != nil {
		return fmt.Errorf("not a tensorflow.serving.PredictionLog: %v", err)
	}
	var err error
	switch l := log.GetLogType().(type) {
	case *pb.PredictionLog_PredictLog:
		req := l.PredictLog.GetRequest()
		if req == nil {
			return errors.New("predict_log has no request")
		}
		req.ModelSpec = warmupSpec(srv, req.GetModelSpec())
		_, err = svc.predict(ctx, req)
	case *pb.PredictionLog_ClassifyLog:
		req := l.ClassifyLog.GetRequest()
		if req == nil {
			return errors.New("classify_log has no request")
		}
		req.ModelSpec = warmupSpec(srv, req.GetModelSpec())
		_, err = svc.classify(ctx, req)
	case *pb.PredictionLog_RegressLog:
		req := l.RegressLog.GetRequest()
		if req == nil {
			return errors.New("regress_log has no request")
		}
		req.ModelSpec = warmupSpec(srv, req.GetModelSpec())
		_, err = svc.regress(ctx, req)
	case *pb.PredictionLog_MultiInferenceLog:
		req := l.MultiInferenceLog.GetRequest()
		if req == nil {
			return errors.New("multi_inference_log has no request")
		}
		for _, t := range req.GetTasks() {
			t.ModelSpec = warmupSpec(srv, t.GetModelSpec())
		}
		_, err = svc.multiInference(ctx, req)
	case *pb.PredictionLog_SessionRunLog:
		return errors.New("session_run_log is not supported: tfcat replays predict_log, classify_log and multi_inference_log")
	default:
		return errors.New("the PredictionLog holds no request (predict_log, classify_log, ...)")
	}
	if err != nil {
		if st, ok := status.FromError(err); ok {
			return fmt.Errorf("%s: %s", st.Code(), st.Message())
		}
		return err
	}
	return nil
}

// warmupSpec is a warm-up request's ModelSpec: the version's model, its
// signature name kept.
func warmupSpec(srv *serving.Server, spec *pb.ModelSpec) *pb.ModelSpec {
	name := srv.Name()
	if name == "" {
		name = "default"
	}
	return &pb.ModelSpec{Name: name, SignatureName: spec.GetSignatureName()}
}

// warmupModels answers every spec with the version being warmed up.
type warmupModels struct{ srv *serving.Server }

func (w warmupModels) Acquire(serving.ModelSpec) (*serving.Server, int64, func(), error) {
	return w.srv, w.srv.Version(), func() {}, nil
}

func (w warmupModels) Status(spec serving.ModelSpec) ([]serving.VersionStatus, error) {
	return nil, serving.NotFound(spec)
}

func (w warmupModels) Names() []string { return []string{w.srv.Name()} }

// recordReader reads a TFRecord file: each record a uint64 little-endian
// length, the masked CRC-32C of those 8 bytes, the data, and the data's
// masked CRC-32C.
type recordReader struct {
	r   io.Reader
	hdr [12]byte
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is TFRecord's masked CRC-32C of b.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// next returns the next record's data, or io.EOF at the end of the file.
func (r *recordReader) next() ([]byte, error) {
	n, err := io.ReadFull(r.r, r.hdr[:])
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case err == io.ErrUnexpectedEOF:
		return nil, fmt.Errorf("truncated: the file ends %d bytes into the record's 12-byte header", n)
	case err != nil:
		return nil, err
	}
	if got, want := binary.LittleEndian.Uint32(r.hdr[8:]), maskedCRC(r.hdr[:8]); got != want {
		return nil, fmt.Errorf("corrupt: the length's CRC is 0x%08x, its bytes sum to 0x%08x (not a TFRecord file, or damaged)", got, want)
	}
	size := binary.LittleEndian.Uint64(r.hdr[:8])
	if size > maxWarmupRecordBytes {
		return nil, fmt.Errorf("%d bytes, over the limit of %d", size, maxWarmupRecordBytes)
	}
	buf := make([]byte, size+4)
	if n, err := io.ReadFull(r.r, buf); err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("truncated: the file ends %d bytes into the record's %d bytes of data and CRC", n, size+4)
	} else if err != nil {
		return nil, err
	}
	data := buf[:size]
	if got, want := binary.LittleEndian.Uint32(buf[size:]), maskedCRC(data); got != want {
		return nil, fmt.Errorf("corrupt: the data's CRC is 0x%08x, its %d bytes sum to 0x%08x", got, size, want)
	}
	return data, nil
}
