package tfsession

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/internal/npy"
	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/pixels"
	"github.com/tfcat/tfcat/tfgraph"
	_ "github.com/tfcat/tfcat/tflog" // TensorFlow's log lines off the test output, as off tfcat's
)

const refSteps = 20

// pythonSteps runs testdata/tutorial.py steps once per test binary and returns
// the folder of its .npy files.
var pythonStepsDir string

func pythonSteps(t *testing.T) string {
	t.Helper()
	if pythonStepsDir != "" {
		return pythonStepsDir
	}
	dir, err := os.MkdirTemp("", "tfcat-steps-")
	if err != nil {
		t.Fatal(err)
	}
	testenv.RunPython(t, "testdata/tutorial.py", "steps", dir, "--steps", fmt.Sprint(refSteps))
	pythonStepsDir = dir
	return dir
}

func TestMain(m *testing.M) {
	serveIfAsked()
	code := testenv.RequirePython(m).Run()
	if pythonStepsDir != "" {
		os.RemoveAll(pythonStepsDir)
	}
	os.Exit(code)
}

// defaultStepSpread is the largest relative difference between tfcat's
// default gradients and Python's after one step, across kernel families.
const defaultStepSpread = 5.3e-6

func npyName(prefix, v string) string { return prefix + strings.ReplaceAll(v, "/", "~") + ".npy" }

func loadNPY(t *testing.T, path string) *npy.Array {
	t.Helper()
	a, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func loadBatch(t *testing.T, dir string, i int) *Batch {
	x := loadNPY(t, filepath.Join(dir, fmt.Sprintf("x_%02d.npy", i)))
	y := loadNPY(t, filepath.Join(dir, fmt.Sprintf("y_%02d.npy", i)))
	return &Batch{X: x.Float32, Y: y.Float32, N: x.Shape[0]}
}

// relDiff is the largest |a-b| over the largest |b|: the difference relative to
// the variable's scale, so elements near zero do not dominate.
func relDiff(a, b []float32) float64 {
	var d, scale float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
		scale = math.Max(scale, math.Abs(float64(b[i])))
	}
	if scale == 0 {
		return d
	}
	return d / scale
}

// TestStepsMatchPython: from the same initial values and on the same 20 batches,
// tfcat's Adam steps give the losses, weights, slots and beta powers that Python
// TensorFlow's tutorial graph gives. With the gradients as the C API builds
// them (UnfusedGradients) the arithmetic is the tutorial's, and so are all 20
// steps. tfcat's default gradients sum each bias's gradient in another order
// (see biasGradients): one step agrees to float rounding; over many steps
// the difference grows as any rounding difference does in training (Adam
// turns tiny gradients into full-size steps), so its loss curve is checked
// against the tutorial's arithmetic in TestOneDNNKeepsResults.
//
// Bounds: the tutorial's arithmetic is exact — the same graph on the same
// kernels, equal bits on every kernel family (scripts/numerics.sh), so any
// difference is a bug. With the default gradients the losses are exact too
// (a step's loss comes from the forward pass, before the update) and the
// variables after one step differ only through the bias gradients' sums:
// k = 32·128·128 = 524,288 terms for the first convolution's bias, summed
// blockwise by the GEMV and pairwise by TensorFlow's Sum, each within
// ≈ log2(k)·u ≈ 1.1e-6 of Σ|terms| (Higham, Accuracy and Stability of
// Numerical Algorithms, §4.2), and Adam's second moment squares the
// gradient, doubling that. Measured relative to each variable's largest
// value: 5.22e-6 (native, AVX512_CORE), 4.86e-6 (AVX2), and on Eigen (see
// defaultStepSpread); the bound is that spread × testenv.SpreadHeadroom.
func TestStepsMatchPython(t *testing.T) {
	dir := pythonSteps(t)
	for _, tc := range []struct {
		name    string
		opt     tfgraph.BuildOptions
		steps   int
		prefix  string  // the Python values to compare with, after steps
		varsTol float64 // relative to each variable's largest value; 0: exact
	}{
		{"tutorial gradients", tfgraph.BuildOptions{Seed: 1, UnfusedGradients: true}, refSteps, "final_", 0},
		{"default", tfgraph.BuildOptions{Seed: 1}, 1, "step1_", defaultStepSpread * testenv.SpreadHeadroom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustBuild(t, network.Tutorial(2), tc.opt)
			s := mustSession(t, m)
			if err := s.Init(); err != nil {
				t.Fatal(err)
			}
			names, err := os.ReadFile(filepath.Join(dir, "variables.txt"))
			if err != nil {
				t.Fatal(err)
			}
			pyVars := strings.Fields(string(names))
			if len(pyVars) != len(m.Vars) {
				t.Fatalf("Python has %d global variables, tfcat %d", len(pyVars), len(m.Vars))
			}
			init := map[string][]float32{}
			for _, v := range pyVars {
				if m.Var(v) == nil {
					t.Fatalf("Python variable %s missing in tfcat's graph", v)
				}
				init[v] = loadNPY(t, filepath.Join(dir, npyName("init_", v))).Float32
			}
			if testenv.Fault() == testenv.FaultStep {
				// One variable from the step after: Python's values after step 1.
				init[pyVars[1]] = loadNPY(t, filepath.Join(dir, npyName("step1_", pyVars[1]))).Float32
			}
			if err := s.SetVariables(init); err != nil {
				t.Fatal(err)
			}
			want := loadNPY(t, filepath.Join(dir, "losses.npy")).Float32
			worstLoss := 0.0
			for i := range tc.steps {
				b := loadBatch(t, dir, i)
				b.X = testenv.FaultInput(b.X, 3)
				loss, err := s.Step(b)
				if err != nil {
					t.Fatal(err)
				}
				d := relDiff([]float32{loss}, []float32{want[i]})
				worstLoss = math.Max(worstLoss, d)
				if d != 0 {
					t.Errorf("step %d: loss %.7g, Python %.7g", i+1, loss, want[i])
				}
			}
			got, err := s.VariableValues()
			if err != nil {
				t.Fatal(err)
			}
			worstVar, worstName := 0.0, ""
			for _, v := range pyVars {
				ref := loadNPY(t, filepath.Join(dir, npyName(tc.prefix, v))).Float32
				if len(ref) != len(got[v]) {
					t.Fatalf("%s: %d values, Python %d", v, len(got[v]), len(ref))
				}
				if d := relDiff(got[v], ref); d > worstVar {
					worstVar, worstName = d, v
				}
			}
			if worstVar > tc.varsTol {
				t.Errorf("after %d steps, %s differs from Python by %.3g (relative to its largest value)", tc.steps, worstName, worstVar)
			}
			t.Logf("%d steps: largest loss difference %.3g, largest variable difference %.3g (%s), relative", tc.steps, worstLoss, worstVar, worstName)
		})
	}
}

// Batch is the one batch type the data side fills and the session reads.
type Batch = pixels.Batch
