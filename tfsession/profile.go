package tfsession

import (
	"fmt"
	"slices"
	"strings"
	"time"

	tf "github.com/wamuir/graft/tensorflow"
	configpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/internal/tfc"
	"github.com/tfcat/tfcat/pixels"
)

// StepProfile is where one training step spent its time, from the step stats
// TensorFlow records in a run's RunMetadata when asked for a full trace.
type StepProfile struct {
	// Wall is the traced run from its first op's start to its last op's end.
	Wall time.Duration
	// OpTime is the sum of every op's run time; above Wall when ops ran in
	// parallel.
	OpTime time.Duration
	// Ops are the op types (as the runtime ran them: oneDNN's rewrites show
	// as _MklNative... types), the largest total time first.
	Ops []OpProfile
}

// OpProfile is one op type's part of a step.
type OpProfile struct {
	Type  string
	Count int           // nodes of this type that ran
	Time  time.Duration // their summed run times
	Share float64       // Time / StepProfile.OpTime
}

// ProfileStep runs one training step on b with TensorFlow's FULL_TRACE and
// returns its per-op profile. The step trains like Step (the variables are
// updated). Tracing adds a little time to each op.
func (s *Session) ProfileStep(b *pixels.Batch) (*StepProfile, error) {
	if s.Model.Train == nil {
		return nil, fmt.Errorf("profiling a step: the model was built for inference only")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.s == nil {
		return nil, ErrClosed
	}
	if err := s.load(b); err != nil {
		return nil, fmt.Errorf("profiling a step: %w", err)
	}
	nIn := 2
	if s.steps.in[2] != nil {
		nIn = 3
	}
	feeds := []tf.Output{s.Model.X, s.Model.Labels, s.Model.LearningRate}[:nIn]
	r, err := tfc.NewRunner(s.s, feeds, []tf.Output{s.Model.TrainCost}, []*tf.Operation{s.Model.Train})
	if err != nil {
		return nil, fmt.Errorf("profiling a step: %w", err)
	}
	defer r.Close()
	opts, err := proto.Marshal(&configpb.RunOptions{TraceLevel: configpb.RunOptions_FULL_TRACE})
	if err != nil {
		return nil, fmt.Errorf("profiling a step: encoding the run options: %w", err)
	}
	meta, err := r.RunTraced(s.steps.in[:nIn], opts)
	if err != nil {
		return nil, fmt.Errorf("profiling a step: %w", err)
	}
	var md configpb.RunMetadata
	if err := proto.Unmarshal(meta, &md); err != nil {
		return nil, fmt.Errorf("profiling a step: decoding the run metadata: %w", err)
	}
	return s.stepProfile(&md), nil
}

// stepProfile sums md's step stats by op type.
func (s *Session) stepProfile(md *configpb.RunMetadata) *StepProfile {
	byType := map[string]*OpProfile{}
	var first, last int64 = -1, 0
	p := &StepProfile{}
	for _, dev := range md.GetStepStats().GetDevStats() {
		for _, n := range dev.GetNodeStats() {
			name := n.GetNodeName()
			if name == "_SOURCE" || name == "_SINK" {
				continue
			}
			start, d := n.GetAllStartMicros(), n.GetAllEndRelMicros()
			if first < 0 || start < first {
				first = start
			}
			last = max(last, start+d)
			typ := opType(n.GetTimelineLabel())
			if typ == "" {
				if op := s.Model.Graph.Operation(strings.SplitN(name, ":", 2)[0]); op != nil {
					typ = op.Type()
				} else {
					typ = name
				}
			}
			o := byType[typ]
			if o == nil {
				o = &OpProfile{Type: typ}
				byType[typ] = o
			}
			o.Count++
			o.Time += time.Duration(d) * time.Microsecond
			p.OpTime += time.Duration(d) * time.Microsecond
		}
	}
	if first >= 0 {
		p.Wall = time.Duration(last-first) * time.Microsecond
	}
	for _, o := range byType {
		if p.OpTime > 0 {
			o.Share = float64(o.Time) / float64(p.OpTime)
		}
		p.Ops = append(p.Ops, *o)
	}
	slices.SortFunc(p.Ops, func(a, b OpProfile) int {
		if a.Time != b.Time {
			return int(b.Time - a.Time)
		}
		return strings.Compare(a.Type, b.Type)
	})
	return p
}

// opType reads the op type from a timeline label, "node = Type(inputs)".
func opType(label string) string {
	_, rhs, ok := strings.Cut(label, " = ")
	if !ok {
		return ""
	}
	typ, _, _ := strings.Cut(rhs, "(")
	return strings.TrimSpace(typ)
}

// Merge adds q's op times to p's (for the mean of several traced steps,
// divide with Scale).
func (p *StepProfile) Merge(q *StepProfile) {
	p.Wall += q.Wall
	p.OpTime += q.OpTime
	for _, o := range q.Ops {
		i := slices.IndexFunc(p.Ops, func(x OpProfile) bool { return x.Type == o.Type })
		if i < 0 {
			p.Ops = append(p.Ops, OpProfile{Type: o.Type})
			i = len(p.Ops) - 1
		}
		p.Ops[i].Count += o.Count
		p.Ops[i].Time += o.Time
	}
	p.reshare()
}

// Scale divides p's times and counts by n (the number of profiles merged).
func (p *StepProfile) Scale(n int) {
	if n <= 1 {
		return
	}
	p.Wall /= time.Duration(n)
	p.OpTime /= time.Duration(n)
	for i := range p.Ops {
		p.Ops[i].Time /= time.Duration(n)
		p.Ops[i].Count /= n
	}
	p.reshare()
}

func (p *StepProfile) reshare() {
	for i := range p.Ops {
		p.Ops[i].Share = 0
		if p.OpTime > 0 {
			p.Ops[i].Share = float64(p.Ops[i].Time) / float64(p.OpTime)
		}
	}
	slices.SortFunc(p.Ops, func(a, b OpProfile) int {
		if a.Time != b.Time {
			return int(b.Time - a.Time)
		}
		return strings.Compare(a.Type, b.Type)
	})
}
