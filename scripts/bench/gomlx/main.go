// Command gomlx-bench is a benchmark peer for tfcat written with GoMLX v0.26.0 on its
// pure-Go backend ("go", backends/simplego; XLA is not linked): it trains the tutorial's
// network the way the peers in scripts/bench/peers.py do and prints the same JSON lines.
//
//	gomlx-bench train DATA_DIR STEPS [--dtype f32|bf16] [--conv gather|native]
//	                                 [--validation 0.2] [--every 10] [--cpuprofile FILE]
//
// DATA_DIR holds one sub-folder per class of JPEG/PNG images. All images are decoded,
// resized to 128x128 (golang.org/x/image/draw BiLinear) and scaled to [0, 1] before the
// "start" line. GOMLX_BACKEND may configure the backend (e.g. "go:parallelism=2").
//
// The network is the tutorial's: three 3x3 convolutions (32, 32, 64 filters, SAME, bias),
// each followed by 2x2 max pooling (SAME) and ReLU, flatten, fc 128 + ReLU, fc to the
// classes, softmax cross-entropy, Adam 1e-4, batches of 32. As in peers.py, 20% of the
// images (shuffled once) validate after every epoch and at the end; nothing is saved.
//
// simplego v0.26.0 cannot train it as written with graph.Convolve and graph.MaxPool:
// MaxPool's gradient needs SelectAndScatterMax and Convolve's needs Reverse, neither
// implemented, and its convolution is a single-threaded generic loop (about a minute a
// step on 2 cores). So, by default (--conv gather), each convolution is im2col (Gather)
// and one matrix product, max pooling is Reshape + ReduceMax, and the matrix product's
// gradient is replaced (dotVJP) because v0.26.0 builds it as a broadcast product that
// would need gigabytes. --conv native keeps graph.Convolve, with a gradient that avoids
// Reverse (convVJP): same losses, step for step, much slower. See README.md.
//
// --dtype bf16 is Keras' mixed_bfloat16 done by hand: variables (and Adam) float32,
// convolutions, pooling and matmuls in bfloat16, logits and loss float32. simplego runs
// it (BFloat16 is among its dtypes; losses within 0.3% of float32's) but has no fast
// bfloat16 arithmetic: it was about half as fast as float32 in a short check.
//
// Output, one JSON object a line, t in seconds since the process started:
//
//	{"event":"loaded",...} {"event":"start","t":...}
//	{"event":"step","step":N,"loss":...,"t":...} (every 10 steps)
//	{"event":"epoch","step":N,"val_loss":...,"t":...} (when there is a validation batch)
//	{"event":"done","steps":N,"step":N,"t":...}
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/image/draw"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego" // registers the pure-Go "go" backend; XLA is not linked
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

const (
	size  = 128
	batch = 32
	lr    = 1e-4
)

var t0 = time.Now()

func emit(kv ...any) {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	m["t"] = time.Since(t0).Seconds()
	b, _ := json.Marshal(m)
	os.Stdout.Write(append(b, '\n'))
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gomlx-bench: "+format+"\n", args...)
	os.Exit(1)
}

// ---------------------------------------------------------------- data

type sample struct {
	file  string
	label int
}

// filesAndLabels lists DATA_DIR/<class>/*g (as peers.py's glob) and shuffles them once.
func filesAndLabels(dir string) (classes []string, all []sample) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		fail("%v", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			classes = append(classes, e.Name())
		}
	}
	sort.Strings(classes)
	for i, c := range classes {
		files, _ := filepath.Glob(filepath.Join(dir, c, "*g"))
		sort.Strings(files)
		for _, f := range files {
			all = append(all, sample{f, i})
		}
	}
	rand.New(rand.NewSource(1)).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	return
}

// loadImages decodes and resizes every file into one [n,128,128,3] float32 slice (BGR,
// as OpenCV reads them for the JAX peer), in parallel over GOMAXPROCS goroutines.
func loadImages(samples []sample) []float32 {
	const per = size * size * 3
	out := make([]float32, len(samples)*per)
	var wg sync.WaitGroup
	next := make(chan int)
	var once sync.Once
	var firstErr error
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := image.NewRGBA(image.Rect(0, 0, size, size))
			for i := range next {
				f, err := os.Open(samples[i].file)
				if err != nil {
					once.Do(func() { firstErr = err })
					continue
				}
				img, _, err := image.Decode(f)
				f.Close()
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("%s: %w", samples[i].file, err) })
					continue
				}
				draw.BiLinear.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
				o := out[i*per : (i+1)*per]
				for p := 0; p < size*size; p++ {
					o[3*p+0] = float32(dst.Pix[4*p+2]) / 255
					o[3*p+1] = float32(dst.Pix[4*p+1]) / 255
					o[3*p+2] = float32(dst.Pix[4*p+0]) / 255
				}
			}
		}()
	}
	for i := range samples {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		fail("%v", firstErr)
	}
	return out
}

// ---------------------------------------------------------------- model

// initializer: truncated normal (clipped at 2 sigma) * 0.05 for weights, 0.05 for
// biases, as the JAX peer. Variables are always float32.
func initializer(ctx *context.Context) context.VariableInitializer {
	return func(g *Graph, shape shapes.Shape) *Node {
		if shape.Rank() <= 1 {
			return FillScalar(g, shape, 0.05)
		}
		return MulScalar(ClipScalar(ctx.RandomNormal(g, shape), -2, 2), 0.05)
	}
}

// convVJP replaces graph.convGeneralVJP, whose gradient with respect to the input
// reverses the kernel with the Reverse op, which simplego v0.26.0 does not implement
// (VJPRegistration is the documented hook for this). It only covers what this model
// builds: NHWC input, HWIO kernel, odd square kernel, stride 1, SAME padding, no
// dilation or grouping; and the reverse convolutions it builds itself are never
// differentiated. The kernel is reversed with Slice and Concatenate instead.
//
//	dx = conv(v, kernel reversed in space, in/out channels swapped), SAME
//	dw = conv(x as [C,H,W,B], v as [H,W,B,F], padding (k-1)/2) -> [C,k,k,F] -> [k,k,C,F]
func convVJP(node, v *Node, _ shapes.Shape) []*Node {
	x, kernel := node.Inputs()[0], node.Inputs()[1]
	xd, kd, yd := x.Shape().Dimensions, kernel.Shape().Dimensions, node.Shape().Dimensions
	k := kd[0]
	if x.Rank() != 4 || kernel.Rank() != 4 || kd[1] != k || k%2 != 1 || kd[2] != xd[3] ||
		yd[0] != xd[0] || yd[1] != xd[1] || yd[2] != xd[2] || yd[3] != kd[3] {
		panic(fmt.Sprintf("convVJP: only NHWC x HWIO, stride 1, SAME: x %s kernel %s out %s",
			x.Shape(), kernel.Shape(), node.Shape()))
	}
	p := (k - 1) / 2
	rev := kernel
	for axis := 0; axis < 2; axis++ {
		parts := make([]*Node, k)
		for i := 0; i < k; i++ {
			spec := []SliceAxisSpec{AxisRange(), AxisRange(), AxisRange(), AxisRange()}
			spec[axis] = AxisRange(k-1-i, k-i)
			parts[i] = Slice(rev, spec...)
		}
		rev = Concatenate(parts, axis)
	}
	dx := Convolve(v, Transpose(rev, 2, 3)).Strides(1).PadSame().Done()
	xt := TransposeAllAxes(x, 3, 1, 2, 0) // [C,H,W,B]: batch C, channels B
	vt := TransposeAllAxes(v, 1, 2, 0, 3) // [H,W,B,F]: an HxW kernel from B to F
	dw := Convolve(xt, vt).Strides(1).PaddingPerDim([][2]int{{p, p}, {p, p}}).Done()
	dw = TransposeAllAxes(dw, 1, 2, 0, 3) // [C,k,k,F] -> [k,k,C,F]
	return []*Node{dx, dw}
}

// maxPool2 is 2x2 max pooling, stride 2, as a reshape and ReduceMax: graph.MaxPool's
// gradient needs SelectAndScatterMax, which simplego v0.26.0 does not implement. The
// sizes here (128, 64, 32) are even, so SAME padding adds nothing. (ReduceMax's gradient
// goes to every tied maximum of a window, XLA's to one; it does not change the timing.)
func maxPool2(x *Node) *Node {
	d := x.Shape().Dimensions
	n, h, w, c := d[0], d[1], d[2], d[3]
	if h%2 != 0 || w%2 != 0 {
		panic(fmt.Sprintf("maxPool2: odd spatial size %dx%d", h, w))
	}
	return ReduceMax(Reshape(x, n, h/2, 2, w/2, 2, c), 2, 4)
}

// conv3x3Gather is a 3x3 SAME convolution, stride 1, on NHWC x and an HWIO kernel, as
// im2col and one matrix product: each image gets an extra all-zeros pixel that stands
// for the padding, Gather builds the [B*H*W, 9*C] patches, and Dot multiplies them by
// the [9*C, F] kernel. The gradient goes through Dot (see dotVJP) and Gather
// (ScatterSum), which simplego implements, the products on all cores.
func conv3x3Gather(x, kernel *Node) *Node {
	g := x.Graph()
	d := x.Shape().Dimensions
	n, h, w, c := d[0], d[1], d[2], d[3]
	f := kernel.Shape().Dimensions[3]
	hw := h * w
	idx := make([]int32, 0, n*hw*9)
	for b := 0; b < n; b++ {
		base := b * (hw + 1)
		for y := 0; y < h; y++ {
			for xx := 0; xx < w; xx++ {
				for i := -1; i <= 1; i++ {
					for j := -1; j <= 1; j++ {
						sy, sx := y+i, xx+j
						if sy < 0 || sy >= h || sx < 0 || sx >= w {
							idx = append(idx, int32(base+hw)) // the zero pixel
						} else {
							idx = append(idx, int32(base+sy*w+sx))
						}
					}
				}
			}
		}
	}
	padded := Concatenate([]*Node{Reshape(x, n, hw, c), Zeros(g, shapes.Make(x.DType(), n, 1, c))}, 1)
	cols := Gather(Reshape(padded, n*(hw+1), c), Const(g, tensors.FromFlatDataAndDimensions(idx, n*hw*9, 1)))
	y := Dot(Reshape(cols, n*hw, 9*c), Reshape(kernel, 9*c, f))
	return Reshape(y, n, h, w, f)
}

// dotVJP replaces graph.dotVJP for matrix x matrix: v0.26.0 builds the gradients as a
// broadcast Mul of shape [i, j, k] and a ReduceSum, which on simplego allocates
// i*j*k values (4.8 GB for the second convolution's im2col product) instead of two
// matrix products. Other ranks keep the original.
func dotVJP(orig VJP) VJP {
	return func(node *Node, vs []*Node, s shapes.Shape) []*Node {
		a, b := node.Inputs()[0], node.Inputs()[1]
		if a.Rank() != 2 || b.Rank() != 2 {
			return orig(node, vs, s)
		}
		v := vs[0]
		return []*Node{Dot(v, Transpose(b, 0, 1)), Dot(Transpose(a, 0, 1), v)}
	}
}

func modelFn(compute dtypes.DType, classes int, native bool) train.ModelFn {
	return func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		g := inputs[0].Graph()
		x := ConvertDType(inputs[0], compute) // [B, H, W, 3]
		n := x.Shape().Dimensions[0]
		param := func(ctx *context.Context, name string, dims ...int) *Node {
			v := ctx.VariableWithShape(name, shapes.Make(dtypes.Float32, dims...)).ValueGraph(g)
			return ConvertDType(v, compute) // no-op for float32
		}
		c := 3
		for i, f := range []int{32, 32, 64} {
			lc := ctx.Inf("conv%d", i)
			w, b := param(lc, "weights", 3, 3, c, f), param(lc, "biases", f)
			if native {
				x = Convolve(x, w).Strides(1).PadSame().Done()
			} else {
				x = conv3x3Gather(x, w)
			}
			x = Add(x, Reshape(b, 1, 1, 1, f))
			x = maxPool2(x)
			x = Max(x, ZerosLike(x)) // ReLU
			c = f
		}
		x = Reshape(x, n, -1)
		flat := x.Shape().Dimensions[1]
		fc := ctx.In("fc")
		x = Add(MatMul(x, param(fc, "weights", flat, 128)), Reshape(param(fc, "biases", 128), 1, 128))
		x = Max(x, ZerosLike(x))
		out := ctx.In("out")
		x = Add(MatMul(x, param(out, "weights", 128, classes)), Reshape(param(out, "biases", classes), 1, classes))
		// Logits, so softmax and cross-entropy, in float32 (Keras' mixed_bfloat16 does the same).
		return []*Node{ConvertDType(x, dtypes.Float32)}
	}
}

// ---------------------------------------------------------------- train

func batchTensors(x []float32, y []int32, idx []int) (*tensors.Tensor, *tensors.Tensor) {
	const per = size * size * 3
	bx := make([]float32, len(idx)*per)
	by := make([]int32, len(idx))
	for k, i := range idx {
		copy(bx[k*per:(k+1)*per], x[i*per:(i+1)*per])
		by[k] = y[i]
	}
	return tensors.FromFlatDataAndDimensions(bx, len(idx), size, size, 3),
		tensors.FromFlatDataAndDimensions(by, len(idx), 1)
}

// validSet yields the validation images in whole batches (as the JAX peer: a last
// partial batch is left out), for trainer.Eval.
type validSet struct {
	x        []float32
	y        []int32
	nb, next int
}

func (v *validSet) Name() string { return "validation" }
func (v *validSet) Reset()       { v.next = 0 }
func (v *validSet) Yield() (any, []*tensors.Tensor, []*tensors.Tensor, error) {
	if v.next >= v.nb {
		return nil, nil, nil, io.EOF
	}
	idx := make([]int, batch)
	for q := range idx {
		idx[q] = v.next*batch + q
	}
	v.next++
	bx, by := batchTensors(v.x, v.y, idx)
	return nil, []*tensors.Tensor{bx}, []*tensors.Tensor{by}, nil
}

func trainCmd(args []string) {
	fs := flag.NewFlagSet("train", flag.ExitOnError)
	dtype := fs.String("dtype", "f32", "compute dtype: f32 or bf16 (mixed: float32 variables and logits)")
	every := fs.Int("every", 10, "print a step line every this many steps (run.py expects 10)")
	prof := fs.String("cpuprofile", "", "write a CPU profile to this file")
	convImpl := fs.String("conv", "gather", "convolution: gather (im2col with Gather + DotGeneral) or native (graph.Convolve)")
	valid := fs.Float64("validation", 0.2, "fraction of the images held out, validated after every epoch")
	// Positional DATA_DIR STEPS may come before or after the flags.
	var pos []string
	for len(args) > 0 {
		fs.Parse(args)
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 2 {
		fail("usage: train DATA_DIR STEPS [--dtype f32|bf16] [--validation 0.2]")
	}
	steps, err := strconv.Atoi(pos[1])
	if err != nil || steps <= 0 {
		fail("bad STEPS %q", pos[1])
	}
	compute := dtypes.Float32
	switch strings.ToLower(*dtype) {
	case "f32", "float32":
	case "bf16", "bfloat16":
		compute = dtypes.BFloat16
	default:
		fail("unknown --dtype %q", *dtype)
	}

	if *convImpl != "gather" && *convImpl != "native" {
		fail("unknown --conv %q", *convImpl)
	}
	VJPRegistration[NodeTypeDot] = dotVJP(VJPRegistration[NodeTypeDot])
	if *convImpl == "native" {
		VJPRegistration[NodeTypeConvGeneral] = func(node *Node, v []*Node, s shapes.Shape) []*Node {
			return convVJP(node, v[0], s)
		}
	}

	classes, all := filesAndLabels(pos[0])
	nv := int(*valid * float64(len(all)))
	trainS, validS := all[nv:], all[:nv]
	if len(trainS) < batch {
		fail("%d training images, fewer than a batch of %d", len(trainS), batch)
	}
	tx, vx := loadImages(trainS), loadImages(validS)
	labels := func(s []sample) []int32 {
		y := make([]int32, len(s))
		for i := range s {
			y[i] = int32(s[i].label)
		}
		return y
	}
	ty, vy := labels(trainS), labels(validS)

	// GOMLX_BACKEND may pick a configuration (e.g. "go:parallelism=2"); only "go" is linked.
	var backend backends.Backend
	if os.Getenv(backends.ConfigEnvVar) != "" {
		backend, err = backends.New()
	} else {
		backend, err = backends.NewWithConfig("go")
	}
	if err != nil {
		fail("backend: %v", err)
	}
	emit("event", "loaded", "backend", backend.Name(), "description", backend.Description(),
		"gomlx", "v0.26.0", "go", runtime.Version(), "dtype", compute.String(), "conv", *convImpl,
		"classes", len(classes), "train", len(trainS), "validation", len(validS))

	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(2))
	ctx = ctx.WithInitializer(initializer(ctx))
	trainer := train.NewTrainer(backend, ctx, modelFn(compute, len(classes), *convImpl == "native"),
		losses.SparseCategoricalCrossEntropyLogits,
		optimizers.Adam().LearningRate(lr).Done(), nil, nil)

	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fail("%v", err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	emit("event", "start")
	perEpoch, nvb := len(tx)/(size*size*3)/batch, len(vy)/batch
	rng := rand.New(rand.NewSource(1))
	order := rng.Perm(len(ty))
	for i := 0; i < steps; i++ {
		j := i % perEpoch
		if j == 0 && i > 0 {
			order = rng.Perm(len(ty))
		}
		bx, by := batchTensors(tx, ty, order[j*batch:(j+1)*batch])
		m, err := trainer.TrainStep(nil, []*tensors.Tensor{bx}, []*tensors.Tensor{by})
		if err != nil {
			fail("step %d: %v", i+1, err)
		}
		loss := tensors.ToScalar[float32](m[0])
		if (i+1)%perEpoch == 0 || i+1 == steps {
			if nvb > 0 {
				lm, err := trainer.Eval(&validSet{vx, vy, nvb, 0})
				if err != nil {
					fail("validation: %v", err)
				}
				emit("event", "epoch", "step", i+1, "val_loss", tensors.ToScalar[float32](lm[0]))
			}
		}
		if (i+1)%*every == 0 {
			emit("event", "step", "step", i+1, "loss", loss)
		}
	}
	emit("event", "done", "steps", steps, "step", steps)
}

func main() {
	if len(os.Args) < 2 || os.Args[1] != "train" {
		fail("usage: %s train DATA_DIR STEPS [--dtype f32|bf16] [--validation 0.2]", filepath.Base(os.Args[0]))
	}
	trainCmd(os.Args[2:])
}
