package tfsession

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	tf "github.com/wamuir/graft/tensorflow"
	configpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat"
	"github.com/tfcat/tfcat/internal/onednn"
	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/tfgraph"
)

// Device names accepted by SessionConfig.Device.
const (
	DeviceAuto = "auto"   // a GPU if one is visible, else the CPU
	DeviceCPU  = "/cpu:0" // the CPU only; GPUs are hidden from the session
	DeviceGPU  = "/gpu:0" // the first GPU; an error if none is visible
)

// SessionConfig is what tfcat sets in TensorFlow's ConfigProto.
type SessionConfig struct {
	// IntraOpThreads and InterOpThreads size TensorFlow's thread pools; 0 lets
	// TensorFlow choose (one per core). The first session of a process fixes the
	// pools for the whole process.
	IntraOpThreads int
	InterOpThreads int
	// Device is "", DeviceAuto, DeviceCPU or "/gpu:N". Empty means DeviceAuto.
	Device string
	// NoGPUMemoryGrowth makes TensorFlow reserve all GPU memory up front instead
	// of growing its allocation as needed (growth is the default).
	NoGPUMemoryGrowth bool

	// Target is the server a session runs on, "grpc://host:port" (a cluster
	// task's, see package cluster); empty runs in process.
	Target string
	// DeviceFilters limits the cluster's devices a session waits for and
	// uses, such as "/job:ps" and "/job:worker/task:1".
	DeviceFilters []string
	// OperationTimeout bounds every blocking run (a queue, a peer); zero
	// waits for ever.
	OperationTimeout time.Duration
	// Precision is the arithmetic of the compute ops: F32 (or empty), BF16
	// (TensorFlow's oneDNN bfloat16 rewrite on CPU) or FP16 (its CUDA
	// float16 rewrite on GPU). Variables, optimiser slots and checkpoints
	// stay float32 in every mode: the rewrite casts around the compute ops.
	Precision Precision
}

// checkBF16 refuses a bfloat16 session where TensorFlow would not run it
// fast: the rewrite is oneDNN's, CPU-only, and without AVX512_BF16 or AMX
// oneDNN emulates bfloat16, slower than float32.
func checkBF16(device string) error {
	if _, gpu := GPUIndex(device); gpu {
		return fmt.Errorf("precision bf16 runs on the CPU (TensorFlow's oneDNN rewrite); on %s use fp16", device)
	}
	if !onednn.BF16() {
		return fmt.Errorf("precision bf16 needs oneDNN's bfloat16 instructions (AVX512_BF16 or AMX), which this CPU lacks or ONEDNN_MAX_CPU_ISA caps away (oneDNN would emulate bfloat16, slower than f32)")
	}
	if !onednn.On() {
		return fmt.Errorf("precision bf16 needs TensorFlow's oneDNN kernels, which are off (TF_ENABLE_ONEDNN_OPTS=0 or --onednn=false)")
	}
	return nil
}

// ResolvePrecision turns a requested precision — f32, bf16, fp16 or auto,
// empty meaning f32 — into a session's for device (a resolved DeviceCPU or
// "/gpu:N"), or says why it cannot run there. auto is bf16 for training on a
// CPU whose oneDNN multiplies bfloat16 in hardware (the tutorial's step
// takes 0.60 of f32's time on an AMD EPYC with AVX512_BF16:
// BenchmarkPrecision), else f32; for inference it is f32, the precision
// whose results agree with Python's.
func ResolvePrecision(want string, device string, training bool) (Precision, error) {
	_, gpu := GPUIndex(device)
	switch Precision(strings.ToLower(want)) {
	case "", F32:
		return F32, nil
	case BF16:
		if err := checkBF16(device); err != nil {
			return "", err
		}
		return BF16, nil
	case FP16:
		if !gpu {
			return "", fmt.Errorf("precision fp16 needs a GPU (TensorFlow's float16 rewrite is CUDA's); running on %s", device)
		}
		return FP16, nil
	case "auto":
		if training && !gpu && checkBF16(device) == nil {
			return BF16, nil
		}
		return F32, nil
	}
	return "", fmt.Errorf("unknown precision %q: use f32, bf16, fp16 or auto", want)
}

// Precision names the arithmetic a session's compute ops run in.
type Precision string

const (
	F32  Precision = "f32"
	BF16 Precision = "bf16"
	FP16 Precision = "fp16"
)

// GPUIndex parses "/gpu:N" (also "/device:GPU:N"); ok is false for other names.
func GPUIndex(device string) (n int, ok bool) {
	d := strings.ToLower(device)
	for _, p := range []string{"/gpu:", "/device:gpu:", "gpu:"} {
		if rest, found := strings.CutPrefix(d, p); found {
			if _, err := fmt.Sscanf(rest, "%d", &n); err == nil && n >= 0 && fmt.Sprint(n) == rest {
				return n, true
			}
		}
	}
	return 0, false
}

// Options turns c into graft's SessionOptions.
func (c SessionConfig) Options() (*tf.SessionOptions, error) {
	cfg := &configpb.ConfigProto{
		IntraOpParallelismThreads: int32(c.IntraOpThreads),
		InterOpParallelismThreads: int32(c.InterOpThreads),
		GpuOptions:                &configpb.GPUOptions{AllowGrowth: !c.NoGPUMemoryGrowth},
		// Ops without a kernel for the chosen device (string ops, say) may run
		// on the CPU instead of failing.
		AllowSoftPlacement:   true,
		DeviceFilters:        c.DeviceFilters,
		OperationTimeoutInMs: c.OperationTimeout.Milliseconds(),
	}
	switch c.Precision {
	case "", F32:
	case BF16:
		if err := checkBF16(c.Device); err != nil {
			return nil, err
		}
		cfg.GraphOptions = &configpb.GraphOptions{RewriteOptions: &configpb.RewriterConfig{
			AutoMixedPrecisionOnednnBfloat16: configpb.RewriterConfig_ON}}
		if c.Target != "" {
			// On a cluster the remapper's fused convolutions (_FusedConv2D)
			// would reach the workers in bfloat16, which the op's own
			// definition does not allow (only its oneDNN form, which a
			// worker rewrites to after it has checked the graph): the
			// workers refuse the partition. Unfused, each op is valid in
			// bfloat16 and oneDNN still runs it.
			cfg.GraphOptions.RewriteOptions.Remapping = configpb.RewriterConfig_OFF
		}
	case FP16:
		cfg.GraphOptions = &configpb.GraphOptions{RewriteOptions: &configpb.RewriterConfig{
			AutoMixedPrecision: configpb.RewriterConfig_ON}}
	default:
		return nil, fmt.Errorf("unknown precision %q: use f32, bf16 or fp16", c.Precision)
	}
	switch d := strings.ToLower(c.Device); {
	case d == "" || d == DeviceAuto:
	case d == DeviceCPU || d == "/device:cpu:0" || d == "cpu":
		cfg.DeviceCount = map[string]int32{"GPU": 0}
	default:
		n, ok := GPUIndex(d)
		if !ok {
			return nil, fmt.Errorf("unknown device %q: use auto, /cpu:0 or /gpu:N", c.Device)
		}
		cfg.GpuOptions.VisibleDeviceList = fmt.Sprint(n)
	}
	b, err := proto.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding the session config: %w", err)
	}
	return &tf.SessionOptions{Target: c.Target, Config: b}, nil
}

// RuntimeVersion is the version the linked TensorFlow library reports (TF_Version).
func RuntimeVersion() string { return tf.Version() }

// CheckRuntime fails when the linked TensorFlow library is not the version tfcat
// pins (TENSORFLOW_VERSION): graft's generated ops and the checkpoint format are
// checked against that version only.
func CheckRuntime() error {
	got, want := RuntimeVersion(), tfcat.TensorFlowVersion()
	if got != want {
		return fmt.Errorf("linked TensorFlow runtime is %s, but tfcat is built for %s: reinstall with scripts/install-libtensorflow.sh", got, want)
	}
	return nil
}

// Devices lists the devices a session with this config sees, such as
// "/job:localhost/replica:0/task:0/device:CPU:0".
func Devices(c SessionConfig) ([]tf.Device, error) {
	opts, err := c.Options()
	if err != nil {
		return nil, err
	}
	s, err := tf.NewSession(tf.NewGraph(), opts)
	if err != nil {
		return nil, fmt.Errorf("opening a session: %w", err)
	}
	defer s.Close()
	return s.ListDevices()
}

// GPUs lists the GPU devices TensorFlow sees.
func GPUs() ([]tf.Device, error) {
	devs, err := Devices(SessionConfig{})
	if err != nil {
		return nil, err
	}
	var gpus []tf.Device
	for _, d := range devs {
		if d.Type == "GPU" {
			gpus = append(gpus, d)
		}
	}
	return gpus, nil
}

// ErrNoGPU is returned when a GPU device is asked for and none is visible.
var ErrNoGPU = errors.New("no GPU is visible to TensorFlow (check the NVIDIA driver, CUDA 12 and cuDNN 9 libraries, and that tfcat was installed with the GPU libtensorflow: scripts/install-libtensorflow.sh --gpu)")

// ResolveDevice turns DeviceAuto into DeviceCPU or DeviceGPU after looking for
// GPUs, and checks that an explicit GPU exists. It returns the device to use.
func ResolveDevice(device string) (string, error) {
	d := strings.ToLower(device)
	if d == "" {
		d = DeviceAuto
	}
	if d == DeviceCPU || d == "cpu" || d == "/device:cpu:0" {
		return DeviceCPU, nil
	}
	n, isGPU := GPUIndex(d)
	if d != DeviceAuto && !isGPU {
		return "", fmt.Errorf("unknown device %q: use auto, /cpu:0 or /gpu:N", device)
	}
	gpus, err := GPUs()
	if err != nil {
		return "", err
	}
	if d == DeviceAuto {
		if len(gpus) == 0 {
			return DeviceCPU, nil
		}
		return DeviceGPU, nil
	}
	if n >= len(gpus) {
		if len(gpus) == 0 {
			return "", fmt.Errorf("device %s: %w", device, ErrNoGPU)
		}
		return "", fmt.Errorf("device %s: only %d GPU(s) visible", device, len(gpus))
	}
	return fmt.Sprintf("/gpu:%d", n), nil
}

// Session runs a Model: it trains it (Step, Evaluate), saves and restores it,
// and, as a Classifier, predicts with it. Predict is safe for concurrent use,
// as TensorFlow sessions are; Step and Evaluate take turns.
type Session struct {
	Predictor // x -> y_pred on this session
	Model     *tfgraph.Model
	s         *tf.Session
	mu        sync.Mutex // Step, Evaluate and Close
	steps     stepper
	cache     *featureCache // CacheFeatures
	writer    *bundleWriter // Snapshot's, made at the first
}

// NewSession opens a session on m's graph. Close it when done.
func NewSession(m *tfgraph.Model, c SessionConfig) (*Session, error) {
	opts, err := c.Options()
	if err != nil {
		return nil, err
	}
	s, err := tf.NewSession(m.Graph, opts)
	if err != nil {
		return nil, fmt.Errorf("opening a session: %w", err)
	}
	net := m.Net
	return &Session{Model: m, s: s, Predictor: Predictor{Session: s, X: m.X, Pred: m.Pred,
		Height: net.Height, Width: net.Width, Channels: net.Channels, Classes: net.Classes, Resize: net.Resize}}, nil
}

// Close releases the session's resources now, rather than at garbage collection.
func (s *Session) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps.close()
	s.s = nil
	werr := s.writer.close()
	if err := s.Predictor.closeSession(); err != nil {
		return err
	}
	return werr
}

// Raw is the underlying graft session, for callers that run their own fetches.
func (s *Session) Raw() *tf.Session { return s.s }

// Init runs the initialiser of every variable.
func (s *Session) Init() error {
	if _, err := s.s.Run(nil, nil, []*tf.Operation{s.Model.Init}); err != nil {
		return fmt.Errorf("initialising variables: %w", err)
	}
	return nil
}

// Runtime describes the linked TensorFlow library and the devices it sees.
type Runtime struct {
	TensorFlow string   `json:"tensorflow"`        // TF_Version
	Pinned     string   `json:"tensorflow_pinned"` // the version tfcat is built for
	Devices    []string `json:"devices"`
	GPUs       []string `json:"gpus"`
	Types      []string `json:"-"` // each device's type, as Devices
}

// WriteText writes r as tfcat version prints it, after the line naming
// tfcat's own version.
func (r Runtime) WriteText(w io.Writer, version string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "tfcat %s\nTensorFlow %s (C library; tfcat pins %s)\n", version, r.TensorFlow, r.Pinned)
	for i, d := range r.Devices {
		fmt.Fprintf(&b, "device %s (%s)\n", d, r.Types[i])
	}
	if len(r.GPUs) == 0 {
		b.WriteString("GPUs: none visible\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// DescribeRuntime lists the runtime's version and devices. The error is from
// listing devices; the versions are set even then.
func DescribeRuntime() (Runtime, error) {
	r := Runtime{TensorFlow: RuntimeVersion(), Pinned: tfcat.TensorFlowVersion(), Devices: []string{}, GPUs: []string{}}
	devs, err := Devices(SessionConfig{})
	for _, d := range devs {
		r.Devices, r.Types = append(r.Devices, d.Name), append(r.Types, d.Type)
		if d.Type == "GPU" {
			r.GPUs = append(r.GPUs, d.Name)
		}
	}
	if err != nil {
		return r, fmt.Errorf("listing devices: %w", err)
	}
	return r, nil
}

// GraphSession runs a graph that is not a Model, such as a parameter
// server's PSWait.
type GraphSession struct{ s *tf.Session }

// NewGraphSession opens a session on g. Close it when done.
func NewGraphSession(g *tf.Graph, c SessionConfig) (*GraphSession, error) {
	opts, err := c.Options()
	if err != nil {
		return nil, err
	}
	s, err := tf.NewSession(g, opts)
	if err != nil {
		return nil, fmt.Errorf("opening a session: %w", err)
	}
	return &GraphSession{s: s}, nil
}

// Run computes fetch and discards its value.
func (s *GraphSession) Run(fetch tf.Output) error {
	out, err := s.s.Run(nil, []tf.Output{fetch}, nil)
	tfc.FreeAll(out)
	return err
}

// Close releases the session.
func (s *GraphSession) Close() error { return s.s.Close() }
