package tfsession

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	nodepb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/tfgraph"
)

// trainedTutorial returns a session on the tutorial's network trained for a few
// steps on the Python reference batches.
func trainedTutorial(t *testing.T, steps int) (*Session, string) {
	t.Helper()
	dir := pythonSteps(t)
	s := mustSession(t, mustBuild(t, network.Tutorial(2), tfgraph.BuildOptions{Seed: 5}))
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	for i := range steps {
		if _, err := s.Step(loadBatch(t, dir, i)); err != nil {
			t.Fatal(err)
		}
	}
	return s, dir
}

func TestSaveWritesTheTutorialsFiles(t *testing.T) {
	s, _ := trainedTutorial(t, 2)
	dir := t.TempDir()
	prefix, err := s.Save(SaveOptions{Dir: dir}, network.Info{Classes: []string{"cats", "dogs"}, Step: 2})
	if err != nil {
		t.Fatal(err)
	}
	if prefix != filepath.Join(dir, "dogs-cats-model") {
		t.Errorf("prefix %s", prefix)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"checkpoint", "dogs-cats-model.data-00000-of-00001", "dogs-cats-model.index", "dogs-cats-model.meta"}
	if !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
	state, _ := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if got := string(state); got != "model_checkpoint_path: \"dogs-cats-model\"\nall_model_checkpoint_paths: \"dogs-cats-model\"\n" {
		t.Errorf("checkpoint file:\n%s", got)
	}
	meta, err := checkpoint.ReadMetaGraph(prefix)
	if err != nil {
		t.Fatal(err)
	}
	mi := network.InfoFromMeta(meta)
	if !slices.Equal(mi.Classes, []string{"cats", "dogs"}) || mi.Step != 2 || mi.Network == nil || mi.TensorFlowVersion != RuntimeVersion() {
		t.Errorf("meta info %+v", mi)
	}
	if n := len(meta.CollectionDef["variables"].GetBytesList().GetValue()); n != 32 {
		t.Errorf("variables collection has %d entries, want 32", n)
	}
	if n := len(meta.CollectionDef["trainable_variables"].GetBytesList().GetValue()); n != 10 {
		t.Errorf("trainable_variables collection has %d entries, want 10", n)
	}
	if got := meta.CollectionDef["train_op"].GetNodeList().GetValue(); !slices.Equal(got, []string{"Adam"}) {
		t.Errorf("train_op collection %v", got)
	}
	if sd := meta.SaverDef; sd.FilenameTensorName != "save/Const:0" || sd.SaveTensorName != "save/control_dependency:0" ||
		sd.RestoreOpName != "save/restore_all" || sd.MaxToKeep != 5 || sd.KeepCheckpointEveryNHours != 10000 || sd.Version != 2 {
		t.Errorf("saver def %v", sd)
	}
	if len(meta.MetaInfoDef.StrippedOpList.Op) < 20 {
		t.Errorf("stripped op list has %d ops", len(meta.MetaInfoDef.StrippedOpList.Op))
	}
	// A second save of the same name replaces the files and leaves no temporaries.
	if _, err := s.Save(SaveOptions{Dir: dir}, network.Info{Step: 3}); err != nil {
		t.Fatal(err)
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("after a second save: %d files", len(entries))
	}
}

func TestGoCheckpointLoadsInPython(t *testing.T) {
	s, dir := trainedTutorial(t, 3)
	out := t.TempDir()
	prefix, err := s.Save(SaveOptions{Dir: out}, network.Info{Step: 3})
	if err != nil {
		t.Fatal(err)
	}
	probe := loadBatch(t, dir, 19)
	if testenv.Fault() == testenv.FaultStep {
		// One variable from the step after the saved one.
		saved, err := s.VariableValues()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Step(loadBatch(t, dir, 3)); err != nil {
			t.Fatal(err)
		}
		delete(saved, s.Model.Vars[0].Name)
		if err := s.SetVariables(saved); err != nil {
			t.Fatal(err)
		}
	}
	want, err := s.Predict(testenv.FaultInput(probe.X, 3), probe.N)
	if err != nil {
		t.Fatal(err)
	}
	pred := filepath.Join(t.TempDir(), "pred.npy")
	testenv.RunPython(t, "testdata/tutorial.py", "predict", out, filepath.Join(dir, "x_19.npy"), pred)
	got := loadNPY(t, pred).Float32
	// The same forward graph in Python and in Go.
	if d := testenv.MaxAbsDiff(got, want); d > testenv.SameGraphProb {
		t.Errorf("Python's y_pred from tfcat's checkpoint differs from tfcat's by %g", d)
	} else {
		t.Logf("Python restored tfcat's checkpoint: max |Δp| = %g over %d probabilities", d, len(got))
	}

	// The same keys, dtypes and shapes as the Python tutorial's own checkpoint.
	pyOut := t.TempDir()
	testenv.RunPython(t, "testdata/tutorial.py", "save", pyOut, "--data", dir, "--steps", "1")
	goKeys := testenv.RunPython(t, "testdata/tutorial.py", "keys", prefix)
	pyKeys := testenv.RunPython(t, "testdata/tutorial.py", "keys", filepath.Join(pyOut, "dogs-cats-model"))
	if goKeys != pyKeys {
		t.Errorf("checkpoint keys differ.\ntfcat:\n%s\nPython:\n%s", goKeys, pyKeys)
	}
	if n := strings.Count(goKeys, "\n"); n != 32 {
		t.Errorf("%d keys, want 32", n)
	}
}

func TestPythonCheckpointLoadsInGo(t *testing.T) {
	dir := pythonSteps(t)
	const steps = 5
	out := t.TempDir()
	testenv.RunPython(t, "testdata/tutorial.py", "save", out, "--data", dir, "--steps", fmt.Sprint(steps))

	prefix, err := checkpoint.Resolve(out)
	if err != nil {
		t.Fatal(err)
	}
	im, err := ImportCheckpoint(prefix, ImportOptions{Session: SessionConfig{IntraOpThreads: 1, InterOpThreads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if h, w, c := im.InputSize(); h != 128 || w != 128 || c != 3 || im.NumClasses() != 2 {
		t.Errorf("imported model takes %dx%dx%d, %d classes", h, w, c, im.NumClasses())
	}
	probe := loadBatch(t, dir, 19)
	got, err := im.Predict(testenv.FaultInput(probe.X, 3), probe.N)
	if err != nil {
		t.Fatal(err)
	}
	want := loadNPY(t, filepath.Join(out, "probe_pred.npy")).Float32
	// The same forward graph in Python and in Go: equal bits on every
	// family measured; SameGraphProb allows a few ulps.
	if d := testenv.MaxAbsDiff(got, want); d > testenv.SameGraphProb {
		t.Errorf("tfcat's y_pred from Python's checkpoint differs by %g", d)
	} else {
		t.Logf("imported Python checkpoint: max |Δp| = %g", d)
	}

	// Resume training in tfcat's own graph from Python's checkpoint.
	s, mi, err := Resume(prefix, SessionConfig{IntraOpThreads: 1, InterOpThreads: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if mi.Step != steps {
		t.Errorf("resumed at step %d, want %d (from beta1_power)", mi.Step, steps)
	}
	p2, err := s.Predict(probe.X, probe.N)
	if err != nil {
		t.Fatal(err)
	}
	if d := testenv.MaxAbsDiff(p2, want); d > testenv.SameGraphProb {
		t.Errorf("resumed model's y_pred differs by %g", d)
	}
	nb := loadBatch(t, dir, steps)
	nb.X = testenv.FaultInput(nb.X, 3)
	loss, err := s.Step(nb)
	if err != nil {
		t.Fatal(err)
	}
	// The loss comes from the forward pass on the restored weights: the
	// same graph, equal bits on every family measured; 8 ulps allowed.
	next := loadNPY(t, filepath.Join(out, "next_loss.npy")).Float32[0]
	if d := relDiff([]float32{loss}, []float32{next}); d > 8*testenv.Unit {
		t.Errorf("next step's loss %.7g, Python's %.7g", loss, next)
	} else {
		t.Logf("resumed from Python: next loss %.7g vs Python %.7g (rel %.2g)", loss, next, d)
	}
}

func TestRotationKeepsTheLastFive(t *testing.T) {
	s := mustSession(t, mustBuild(t, small(2), tfgraph.BuildOptions{Seed: 1}))
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for step := 1; step <= 7; step++ {
		if _, err := s.Save(SaveOptions{Dir: dir, Name: "m", StepSuffix: true}, network.Info{Step: step * 100}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := checkpoint.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"m-300", "m-400", "m-500", "m-600", "m-700"}
	if st.ModelCheckpointPath != "m-700" || !slices.Equal(st.AllModelCheckpointPaths, want) {
		t.Errorf("state %+v", st)
	}
	for _, gone := range []string{"m-100", "m-200"} {
		if m, _ := filepath.Glob(filepath.Join(dir, gone+".*")); len(m) > 0 {
			t.Errorf("old checkpoint files remain: %v", m)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "m-300.*")); len(m) != 3 {
		t.Errorf("kept checkpoint m-300 has files %v", m)
	}
}

func TestBadCheckpoints(t *testing.T) {
	net := small(2)
	s := mustSession(t, mustBuild(t, net, tfgraph.BuildOptions{Seed: 1}))
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	good := t.TempDir()
	prefix, err := s.Save(SaveOptions{Dir: good}, network.Info{})
	if err != nil {
		t.Fatal(err)
	}
	copyDir := func(t *testing.T) string {
		d := t.TempDir()
		for _, f := range []string{"checkpoint", "dogs-cats-model.index", "dogs-cats-model.meta", "dogs-cats-model.data-00000-of-00001"} {
			b, err := os.ReadFile(filepath.Join(good, f))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(d, f), b, 0o644)
		}
		return d
	}
	truncate := func(name string, keep float64) func(string) {
		return func(d string) {
			p := filepath.Join(d, name)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:int(float64(len(b))*keep)], 0o644)
		}
	}
	cases := []struct {
		name   string
		break_ func(dir string)
		want   string
	}{
		{"truncated index", truncate("dogs-cats-model.index", 0.5), "dogs-cats-model"},
		{"truncated data", truncate("dogs-cats-model.data-00000-of-00001", 0.5), "dogs-cats-model"},
		{"corrupt meta", func(d string) {
			os.WriteFile(filepath.Join(d, "dogs-cats-model.meta"), []byte("not a proto \xff\xff"), 0o644)
		}, "dogs-cats-model.meta"},
		{"missing data", func(d string) { os.Remove(filepath.Join(d, "dogs-cats-model.data-00000-of-00001")) }, "data-00000-of-00001 is missing"},
		{"checkpoint names missing files", func(d string) {
			os.WriteFile(filepath.Join(d, "checkpoint"), []byte("model_checkpoint_path: \"gone\"\n"), 0o644)
		}, "names \"gone\""},
		{"garbled checkpoint file", func(d string) { os.WriteFile(filepath.Join(d, "checkpoint"), []byte("{{{"), 0o644) }, "checkpoint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := copyDir(t)
			c.break_(d)
			err := func() error {
				p, err := checkpoint.Resolve(d)
				if err != nil {
					return err
				}
				im, err := ImportCheckpoint(p, ImportOptions{})
				if err != nil {
					return err
				}
				im.Close()
				return nil
			}()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v; want one mentioning %q", err, c.want)
			}
		})
	}
	t.Run("shape mismatch", func(t *testing.T) {
		other := net
		other.FC = 5
		s2 := mustSession(t, mustBuild(t, other, tfgraph.BuildOptions{Seed: 1}))
		err := s2.RestoreVariables(prefix)
		if err == nil || !strings.Contains(err.Error(), "shape") {
			t.Errorf("restoring into another shape: %v", err)
		}
	})
	t.Run("not a model folder", func(t *testing.T) {
		_, err := checkpoint.Resolve(t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "not a model folder") {
			t.Errorf("empty folder: %v", err)
		}
	})
}

// TestImportRefusesFileWriters: a .meta whose graph holds a WriteFile op is
// refused unless trusted.
func TestImportRefusesFileWriters(t *testing.T) {
	s := mustSession(t, mustBuild(t, small(2), tfgraph.BuildOptions{Seed: 1}))
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	prefix, err := s.Save(SaveOptions{Dir: dir}, network.Info{})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := checkpoint.ReadMetaGraph(prefix)
	if err != nil {
		t.Fatal(err)
	}
	meta.GraphDef.Node = append(meta.GraphDef.Node, &nodepb.NodeDef{
		Name: "evil", Op: "WriteFile", Input: []string{"save/Const", "save/Const"},
	})
	for _, n := range meta.GraphDef.Node {
		if n.Name == tfgraph.SaverRestoreOp {
			n.Input = append(n.Input, "^evil")
		}
	}
	b, _ := proto.Marshal(meta)
	os.WriteFile(prefix+checkpoint.MetaSuffix, b, 0o644)
	_, err = ImportCheckpoint(prefix, ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), "WriteFile") || !errors.Is(err, checkpoint.ErrUntrustedGraph) {
		t.Fatalf("WriteFile graph: %v", err)
	}
	im, err := ImportCheckpoint(prefix, ImportOptions{Trust: true})
	if err != nil {
		t.Fatalf("trusted: %v", err)
	}
	im.Close()
}

// TestKilledWhileSaving kills a process that saves checkpoints in a loop, many
// times at random moments; the checkpoint the state file names always loads.
func TestKilledWhileSaving(t *testing.T) {
	if dir := os.Getenv("TFCAT_SAVE_LOOP_DIR"); dir != "" {
		saveLoop(t, dir)
		return
	}
	dir := t.TempDir()
	net := small(2)
	r := rand.New(rand.NewPCG(9, 9))
	const rounds = 15
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKilledWhileSaving$")
		cmd.Env = append(os.Environ(), "TFCAT_SAVE_LOOP_DIR="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for a few completed saves, then kill at a random moment of the
		// next ones.
		sc := bufio.NewScanner(out)
		for saves := 0; saves < 1+round%4 && sc.Scan(); {
			if strings.HasPrefix(sc.Text(), "saved ") {
				saves++
			}
		}
		time.Sleep(time.Duration(r.IntN(20000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		prefix, err := checkpoint.Resolve(dir)
		if err != nil {
			t.Fatalf("after kill %d: %v", round+1, err)
		}
		s := mustSession(t, mustBuild(t, net, tfgraph.BuildOptions{}))
		if err := s.RestoreVariables(prefix); err != nil {
			t.Fatalf("after kill %d: %s does not load: %v", round+1, prefix, err)
		}
		s.Close()
	}
	st, _ := checkpoint.ReadState(dir)
	t.Logf("%d kills during saves; the state file always named a loadable checkpoint (last: %s)", rounds, st.ModelCheckpointPath)
}

func saveLoop(t *testing.T, dir string) {
	s := mustSession(t, mustBuild(t, small(2), tfgraph.BuildOptions{Seed: 1}))
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	for step := 0; ; step++ {
		if _, err := s.Save(SaveOptions{Dir: dir, StepSuffix: step%2 == 0}, network.Info{Step: step}); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("saved %d\n", step)
	}
}

// TestOwnGraphIsAllowed: every op type of tfcat's own training graph passes the
// import check, so tfcat always loads its own checkpoints.
func TestOwnGraphIsAllowed(t *testing.T) {
	m := mustBuild(t, network.Tutorial(2), tfgraph.BuildOptions{})
	for _, o := range m.Graph.Operations() {
		if !checkpoint.TutorialOp(o.Type()) {
			t.Errorf("op %s of type %s is not one of checkpoint's allowed op types", o.Name(), o.Type())
		}
	}
}
