package servables

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	nodepb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/testenv/testmodel"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/tfsession"
)

// small is the tutorial's network on 8×8 grey images of two classes: a
// version loads in tens of milliseconds.
var small = network.Tutorial(2).WithInput(8, 8, 1)

var (
	modelsMu sync.Mutex
	models   = map[string]string{} // saved model folders by seed, shared by the tests
	modelDir string
)

// savedModel returns a tfcat model folder of net with seed's weights, saved
// once per test binary.
func savedModel(t testing.TB, net network.Network, seed int64) string {
	t.Helper()
	modelsMu.Lock()
	defer modelsMu.Unlock()
	key := strconv.Itoa(net.Height) + "x" + strconv.Itoa(net.FC) + "-" + strconv.FormatInt(seed, 10)
	if dir, ok := models[key]; ok {
		return dir
	}
	if modelDir == "" {
		var err error
		if modelDir, err = os.MkdirTemp("", "servables-test"); err != nil {
			t.Fatal(err)
		}
	}
	dir := testmodel.Checkpoint(t, net, testmodel.Options{
		Seed:          seed,
		InferenceOnly: true,
		Session:       tfsession.SessionConfig{IntraOpThreads: 1, InterOpThreads: 1},
		Dir:           filepath.Join(modelDir, key),
		Classes:       []string{"cat", "dog"},
	})
	models[key] = dir
	return dir
}

// TestMain removes the shared model folders.
func TestMain(m *testing.M) {
	code := m.Run()
	if modelDir != "" {
		os.RemoveAll(modelDir)
	}
	os.Exit(code)
}

// deploy copies src to base/n under a temporary name and renames it, as
// TensorFlow Serving's users deploy a version.
func deploy(t testing.TB, src, base string, n int64) string {
	t.Helper()
	tmp := filepath.Join(base, ".tmp-"+strconv.FormatInt(n, 10))
	copyDir(t, src, tmp)
	dst := filepath.Join(base, strconv.FormatInt(n, 10))
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		copyFile(t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
	}
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// Ways a version folder is broken.
const (
	brokenOp        = "a .meta with a WriteFile op"
	brokenTruncated = "a truncated variables file"
	brokenEmpty     = "an empty folder"
)

// breakModel writes a broken copy of src in dst.
func breakModel(t testing.TB, src, dst, how string) {
	t.Helper()
	if how == brokenEmpty {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		return
	}
	copyDir(t, src, dst)
	prefix := filepath.Join(dst, tfsession.DefaultCheckpointName)
	switch how {
	case brokenOp:
		meta, err := checkpoint.ReadMetaGraph(prefix)
		if err != nil {
			t.Fatal(err)
		}
		meta.GraphDef.Node = append(meta.GraphDef.Node, &nodepb.NodeDef{Name: "evil", Op: "WriteFile", Input: []string{"save/Const", "save/Const"}})
		b, err := proto.Marshal(meta)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(prefix+checkpoint.MetaSuffix, b, 0o644); err != nil {
			t.Fatal(err)
		}
	case brokenTruncated:
		data := prefix + ".data-00000-of-00001"
		fi, err := os.Stat(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(data, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown breakage %q", how)
	}
}

// eventually retries cond every 10 ms for up to d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// latest is the version a request for name's latest gets, 0 for none.
func latest(m *Manager, name string) int64 {
	_, v, release, err := m.Acquire(serving.ModelSpec{Name: name})
	if err != nil {
		return 0
	}
	release()
	return v
}

// states maps name's versions to their states.
func states(t testing.TB, m *Manager, name string) map[int64]serving.VersionState {
	t.Helper()
	st, err := m.Status(serving.ModelSpec{Name: name})
	var nf *serving.NotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]serving.VersionState{}
	for _, s := range st {
		out[s.Version] = s.State
	}
	return out
}

// fastOptions poll every 20 ms and settle over 30 ms.
func fastOptions(logs *logBuffer) Options {
	return Options{Poll: 20 * time.Millisecond, Settle: 30 * time.Millisecond, Logf: logs.logf,
		Model: defaultModelOptions}
}

// logBuffer collects a Manager's log lines.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuffer) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, sprintf(format, args...))
}

func (l *logBuffer) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}
