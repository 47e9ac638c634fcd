package cluster

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	configpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/internal/tfc"
)

// Start starts this task's gRPC server — at most once per process, and it
// is never stopped (TensorFlow cannot stop one) — and returns the session
// target that reaches it. threads sizes the server's thread pools (0: one per
// core).
func (c *Config) Start(threads int) (target string, err error) {
	def := &configpb.ServerDef{
		Cluster:   &configpb.ClusterDef{},
		JobName:   c.Task.Type,
		TaskIndex: int32(c.Task.Index),
		Protocol:  "grpc",
		DefaultSessionConfig: &configpb.ConfigProto{
			IntraOpParallelismThreads: int32(threads),
			AllowSoftPlacement:        true,
		},
	}
	jobs := make([]string, 0, len(c.Jobs))
	for j := range c.Jobs {
		jobs = append(jobs, j)
	}
	sort.Strings(jobs)
	for _, j := range jobs {
		tasks := map[int32]string{}
		for i, a := range c.Jobs[j] {
			if a != "" {
				tasks[int32(i)] = a
			}
		}
		def.Cluster.Job = append(def.Cluster.Job, &configpb.JobDef{Name: j, Tasks: tasks})
	}
	b, err := proto.Marshal(def)
	if err != nil {
		return "", fmt.Errorf("encoding the ServerDef: %w", err)
	}
	s, err := tfc.StartServer(b)
	if err != nil {
		addr := c.Address(c.Task)
		if strings.Contains(err.Error(), "Could not start") || strings.Contains(err.Error(), "bind") {
			return "", fmt.Errorf("%s: starting the TensorFlow server on %s: %v (is the port in use?)", c.Task, addr, firstLine(err.Error()))
		}
		return "", fmt.Errorf("%s: starting the TensorFlow server on %s: %v", c.Task, addr, firstLine(err.Error()))
	}
	return s.Target(), nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// Reachable reports whether something accepts TCP connections at addr
// within timeout: how one task tells whether another is still there.
func Reachable(addr string, timeout time.Duration) bool {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// Watch tracks when each of a set of tasks was last reachable.
type Watch struct {
	c     *Config
	tasks []Task
	seen  map[Task]time.Time
}

// NewWatch watches tasks, counting from now.
func (c *Config) NewWatch(tasks []Task) *Watch {
	w := &Watch{c: c, tasks: tasks, seen: map[Task]time.Time{}}
	now := time.Now()
	for _, t := range tasks {
		w.seen[t] = now
	}
	return w
}

// GoneError names a task that could not be reached for longer than the
// cluster timeout.
type GoneError struct {
	Task    Task
	Address string
	For     time.Duration
}

// Error names the task, its address and for how long it was unreachable.
func (e *GoneError) Error() string {
	if e.For <= 0 {
		return fmt.Sprintf("%s (%s) is gone", e.Task, e.Address)
	}
	return fmt.Sprintf("%s (%s) is gone: unreachable for %s", e.Task, e.Address, e.For.Round(time.Second))
}

// Check probes every watched task once and returns a *GoneError for the
// first one unreachable for longer than limit.
func (w *Watch) Check(limit time.Duration) error {
	now := time.Now()
	for _, t := range w.tasks {
		if Reachable(w.c.Address(t), time.Second) {
			w.seen[t] = now
			continue
		}
		if d := now.Sub(w.seen[t]); d > limit {
			return &GoneError{Task: t, Address: w.c.Address(t), For: d}
		}
	}
	return nil
}

// Unreachable probes the watched tasks once and returns a *GoneError for
// each that does not answer now.
func (w *Watch) Unreachable() []*GoneError {
	var gone []*GoneError
	for _, t := range w.tasks {
		if a := w.c.Address(t); !Reachable(a, time.Second) {
			gone = append(gone, &GoneError{Task: t, Address: a})
		}
	}
	return gone
}

// Others are every task of the cluster but this one.
func (c *Config) Others() []Task {
	var out []Task
	for _, job := range []string{Chief, Worker, PS} {
		for i, a := range c.Jobs[job] {
			if t := (Task{job, i}); t != c.Task && a != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// DeviceFilters are the devices a task's sessions use: the parameter
// servers and the task itself, so that a session waits for no other task.
func (c *Config) DeviceFilters() []string {
	if c.Task.Type == PS {
		return []string{c.Task.Device()}
	}
	return []string{"/job:" + PS, c.Task.Device()}
}
