package grpcapi_test

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/servables"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/grpcapi"
)

// tfrecord frames each message as a TFRecord file's record.
func tfrecord(t testing.TB, msgs ...proto.Message) []byte {
	t.Helper()
	var records [][]byte
	for _, m := range msgs {
		data, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, data)
	}
	return frame(records...)
}

// frame writes records as a TFRecord file: each a uint64 length, its masked
// CRC-32C, the data and its masked CRC-32C.
func frame(records ...[]byte) []byte {
	table := crc32.MakeTable(crc32.Castagnoli)
	mask := func(b []byte) uint32 {
		c := crc32.Checksum(b, table)
		return (c>>15 | c<<17) + 0xa282ead8
	}
	var out []byte
	for _, data := range records {
		hdr := binary.LittleEndian.AppendUint64(nil, uint64(len(data)))
		out = append(out, hdr...)
		out = binary.LittleEndian.AppendUint32(out, mask(hdr))
		out = append(out, data...)
		out = binary.LittleEndian.AppendUint32(out, mask(data))
	}
	return out
}

// writeWarmup writes data as dir's warm-up file and returns its path.
func writeWarmup(t testing.TB, dir string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, "assets.extra", "tf_serving_warmup_requests")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func predictLog(inputs map[string]*tensorpb.TensorProto) *pb.PredictionLog {
	return &pb.PredictionLog{LogType: &pb.PredictionLog_PredictLog{PredictLog: &pb.PredictLog{
		Request: &pb.PredictRequest{ModelSpec: spec("pets"), Inputs: inputs}}}}
}

// TestWarmUp: a warm-up file's requests run through the Server; a corrupt
// or truncated file, or a request Predict refuses, fails with the file, the
// record and the reason.
func TestWarmUp(t *testing.T) {
	srv, err := serving.New(testmodel.Fake{}, serving.Config{Name: "pets", Classes: classes})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()

	if n, err := grpcapi.WarmUp(ctx, srv, t.TempDir()); n != 0 || err != nil {
		t.Fatalf("no warm-up file: %d, %v", n, err)
	}

	good := predictLog(map[string]*tensorpb.TensorProto{"images": floatTensor(testmodel.Images(2, 8*8*3, 1), 2, 8, 8, 3)})
	// A request naming another model and version runs on the version
	// warmed up, as in TensorFlow Serving.
	other := predictLog(map[string]*tensorpb.TensorProto{"images": stringTensor(testmodel.PNG(t, 8, 8, 3))})
	other.GetPredictLog().Request.ModelSpec = &pb.ModelSpec{Name: "elsewhere",
		VersionChoice: &pb.ModelSpec_Version{Version: wrapperspb.Int64(99)}, SignatureName: "serving_default"}
	classify := &pb.PredictionLog{LogType: &pb.PredictionLog_ClassifyLog{ClassifyLog: &pb.ClassifyLog{
		Request: &pb.ClassificationRequest{ModelSpec: spec("pets"), Input: examples(bytesFeature(testmodel.PNG(t, 8, 8, 4)))}}}}
	records := tfrecord(t, good, other, classify)
	dir := t.TempDir()
	path := writeWarmup(t, dir, records)
	before := srv.Stats().Images
	n, err := grpcapi.WarmUp(ctx, srv, dir)
	if n != 3 || err != nil {
		t.Fatalf("good file: %d, %v", n, err)
	}
	if got := srv.Stats().Images - before; got != 4 {
		t.Errorf("good file: %d images predicted, want 4", got)
	}

	// Each bad file: the error names the file, the record and the fault.
	wrongName := predictLog(map[string]*tensorpb.TensorProto{"pixels": floatTensor(testmodel.Images(1, 8*8*3, 1), 1, 8, 8, 3)})
	badSig := predictLog(map[string]*tensorpb.TensorProto{"images": floatTensor(testmodel.Images(1, 8*8*3, 1), 1, 8, 8, 3)})
	badSig.GetPredictLog().Request.ModelSpec.SignatureName = "other"
	dataCRC := tfrecord(t, good, good)
	dataCRC[len(dataCRC)-10] ^= 1 // a byte of the second record's data
	lengthCRC := tfrecord(t, good)
	lengthCRC[9] ^= 0x40 // the length's CRC
	tooMany := make([]proto.Message, grpcapi.MaxWarmupRecords+1)
	small := predictLog(map[string]*tensorpb.TensorProto{"images": floatTensor(testmodel.Images(1, 8*8*3, 1), 1, 8, 8, 3)})
	for i := range tooMany {
		tooMany[i] = small
	}
	for _, c := range []struct {
		name  string
		data  []byte
		n     int
		wants []string
	}{
		{"data CRC", dataCRC, 1, []string{"record 2", "corrupt", "data's CRC"}},
		{"length CRC", lengthCRC, 0, []string{"record 1", "corrupt", "length's CRC"}},
		{"truncated data", records[:len(records)-3], 2, []string{"record 3", "truncated"}},
		{"truncated header", append(tfrecord(t, good), 1, 2, 3, 4, 5), 1, []string{"record 2", "truncated", "header"}},
		{"wrong input name", tfrecord(t, good, wrongName), 1, []string{"record 2", "InvalidArgument", "input tensor alias not found in signature: pixels"}},
		{"unknown signature", tfrecord(t, badSig), 0, []string{"record 1", "FailedPrecondition", `"other" not found`}},
		{"not a PredictionLog", frame([]byte{0x0a, 0xff, 0xff, 0xff}), 0, []string{"record 1", "not a tensorflow.serving.PredictionLog"}},
		{"empty log", tfrecord(t, &pb.PredictionLog{}), 0, []string{"record 1", "holds no request"}},
		{"session_run_log", tfrecord(t, &pb.PredictionLog{LogType: &pb.PredictionLog_SessionRunLog{SessionRunLog: &pb.SessionRunLog{}}}), 0, []string{"record 1", "session_run_log is not supported"}},
		{"regress_log", tfrecord(t, &pb.PredictionLog{LogType: &pb.PredictionLog_RegressLog{RegressLog: &pb.RegressLog{
			Request: &pb.RegressionRequest{ModelSpec: spec("pets"), Input: examples(bytesFeature(testmodel.PNG(t, 8, 8, 4)))}}}}), 0, []string{"record 1", "regression"}},
		{"too many records", tfrecord(t, tooMany...), grpcapi.MaxWarmupRecords, []string{"more than 1000 records"}},
	} {
		dir := t.TempDir()
		path := writeWarmup(t, dir, c.data)
		n, err := grpcapi.WarmUp(ctx, srv, dir)
		if err == nil {
			t.Errorf("%s: no error (%d requests)", c.name, n)
			continue
		}
		if n != c.n {
			t.Errorf("%s: %d requests succeeded, want %d", c.name, n, c.n)
		}
		for _, w := range append([]string{path}, c.wants...) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
		t.Logf("%s: %v", c.name, err)
	}

	// The good file still replays after the failures: the Server is fine.
	if n, err := grpcapi.WarmUp(ctx, srv, dir); n != 3 || err != nil {
		t.Fatalf("%s again: %d, %v", path, n, err)
	}
}

// TestWarmUpServables: with servables.Options.WarmUp, a version replays its
// warm-up file before it serves; a version whose file is broken is refused
// (END, with the record and the reason) and the previous version keeps
// serving.
func TestWarmUpServables(t *testing.T) {
	root := t.TempDir()
	base := filepath.Join(root, "pets")
	grey := func() *pb.PredictionLog {
		return predictLog(map[string]*tensorpb.TensorProto{"images": floatTensor(testmodel.Images(1, 64, 1), 1, 8, 8, 1)})
	}
	v1 := filepath.Join(base, "1")
	saveModel(t, v1, 1)
	writeWarmup(t, v1, tfrecord(t, grey(), grey()))

	var (
		mu       sync.Mutex
		replayed = map[string]int{}
	)
	mgr, err := servables.New(servables.SingleModel("pets", base), servables.Options{
		Poll: 20 * time.Millisecond, Settle: 30 * time.Millisecond, Logf: t.Logf,
		WarmUp: func(srv *serving.Server, dir string) error {
			n, err := grpcapi.WarmUp(context.Background(), srv, dir)
			mu.Lock()
			replayed[filepath.Base(dir)] = n
			mu.Unlock()
			return err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	states := func() map[int64]serving.VersionStatus {
		st, err := mgr.Status(serving.ModelSpec{Name: "pets"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[int64]serving.VersionStatus{}
		for _, s := range st {
			out[s.Version] = s
		}
		return out
	}
	waitFor := func(what string, ok func(map[int64]serving.VersionStatus) bool) map[int64]serving.VersionStatus {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			st := states()
			if ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: states %v", what, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("version 1 available", func(st map[int64]serving.VersionStatus) bool {
		return st[1].State == serving.StateAvailable
	})
	mu.Lock()
	if replayed["1"] != 2 {
		t.Errorf("version 1 replayed %d warm-up requests, want 2", replayed["1"])
	}
	mu.Unlock()

	// Version 2 appears by renaming a finished folder; its warm-up file's
	// second record has a bad CRC.
	tmp := filepath.Join(root, "v2")
	saveModel(t, tmp, 2)
	broken := tfrecord(t, grey(), grey())
	broken[len(broken)-1] ^= 0xff
	writeWarmup(t, tmp, broken)
	if err := os.Rename(tmp, filepath.Join(base, "2")); err != nil {
		t.Fatal(err)
	}
	st := waitFor("version 2 refused", func(st map[int64]serving.VersionStatus) bool {
		return st[2].State == serving.StateEnd
	})
	err = st[2].Err
	for _, w := range []string{"tf_serving_warmup_requests", "record 2", "corrupt"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("version 2's error %v lacks %q", err, w)
		}
	}
	t.Logf("version 2: %v", err)
	if st[1].State != serving.StateAvailable {
		t.Errorf("version 1 after version 2 failed: %v", st[1])
	}
	srv, v, release, err := mgr.Acquire(serving.ModelSpec{Name: "pets"})
	if err != nil || v != 1 {
		t.Fatalf("latest after version 2 failed: version %d, %v", v, err)
	}
	defer release()
	p, err := srv.Predict(context.Background(), serving.Input{N: 1, X: testmodel.Images(1, 64, 2)})
	if err != nil || len(p) != 2 {
		t.Errorf("version 1 predicts: %v, %v", p, err)
	}
}
