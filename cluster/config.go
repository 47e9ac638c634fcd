// Package cluster joins tfcat to a TensorFlow cluster: it reads TF_CONFIG,
// the cluster description TensorFlow and Kubernetes operators use, checks it,
// and starts this process's task on TensorFlow's own gRPC runtime — the
// distributed engine that ran TF1's parameter-server jobs, already inside
// libtensorflow. The trainer package builds synchronous data-parallel
// training on top of it.
//
// TensorFlow's gRPC runtime has no authentication and runs whatever graph a
// peer sends it, on every interface of its port: a cluster belongs on a
// private network. Config.Check refuses addresses that resolve to public IPs
// unless told otherwise.
package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Job names tfcat's training uses.
const (
	Chief  = "chief"  // the worker that initialises, saves and reports; optional
	Worker = "worker" // replicas; worker 0 is the chief when there is no chief job
	PS     = "ps"     // parameter servers: they hold the variables
)

// EnvVar is the environment variable that describes the cluster.
const EnvVar = "TF_CONFIG"

// Config is a parsed TF_CONFIG: the cluster, and which task this process is.
type Config struct {
	// Jobs maps a job name to its tasks' "host:port" addresses, by index.
	Jobs map[string][]string
	// Task is this process's task.
	Task Task
	// Environment is TF_CONFIG's "environment" ("cloud" from the Kubeflow
	// operator); informational.
	Environment string
	// Sparse is true when TF_CONFIG gave "sparseCluster" (the Kubeflow
	// operator's dynamic workers), which lists only this worker.
	Sparse bool
}

// Task is one task of the cluster.
type Task struct {
	Type  string // job name
	Index int
}

// String names the task as in messages: "worker 1".
func (t Task) String() string { return fmt.Sprintf("%s %d", t.Type, t.Index) }

// Device is the task's TensorFlow device prefix, "/job:ps/task:1".
func (t Task) Device() string { return fmt.Sprintf("/job:%s/task:%d", t.Type, t.Index) }

// tfConfig is TF_CONFIG's JSON.
type tfConfig struct {
	Cluster       map[string][]string        `json:"cluster"`
	SparseCluster map[string]json.RawMessage `json:"sparseCluster"`
	Task          struct {
		Type  string `json:"type"`
		Index *int   `json:"index"`
	} `json:"task"`
	Environment string `json:"environment"`
}

// FromEnv parses TF_CONFIG; ok is false when it is unset or empty.
func FromEnv() (c *Config, ok bool, err error) {
	v := strings.TrimSpace(os.Getenv(EnvVar))
	if v == "" {
		return nil, false, nil
	}
	c, err = Parse([]byte(v))
	return c, true, err
}

// Parse reads a TF_CONFIG value and checks its shape (see Check for the
// rest): known job names, this task's type and index in range, one chief at
// most.
func Parse(data []byte) (*Config, error) {
	var raw tfConfig
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %w", EnvVar, err)
	}
	c := &Config{Jobs: raw.Cluster, Environment: raw.Environment}
	if raw.SparseCluster != nil {
		if raw.Cluster != nil {
			return nil, fmt.Errorf("%s has both \"cluster\" and \"sparseCluster\"", EnvVar)
		}
		jobs, err := parseSparse(raw.SparseCluster)
		if err != nil {
			return nil, err
		}
		c.Jobs, c.Sparse = jobs, true
	}
	if len(c.Jobs) == 0 {
		return nil, fmt.Errorf("%s has no \"cluster\"", EnvVar)
	}
	for job, tasks := range c.Jobs {
		switch job {
		case Chief, Worker, PS:
		default:
			return nil, fmt.Errorf("%s: unknown job %q in the cluster (tfcat trains with chief, worker and ps)", EnvVar, job)
		}
		for i, a := range tasks {
			if _, _, err := net.SplitHostPort(a); err != nil && !(c.Sparse && a == "") {
				return nil, fmt.Errorf("%s: %s %d's address %q is not host:port", EnvVar, job, i, a)
			}
		}
	}
	if n := len(c.Jobs[Chief]); n > 1 {
		return nil, fmt.Errorf("%s: %d chiefs; a cluster has at most one", EnvVar, n)
	}
	if raw.Task.Type == "" {
		return nil, fmt.Errorf("%s has no task type", EnvVar)
	}
	if raw.Task.Index == nil {
		return nil, fmt.Errorf("%s has no task index", EnvVar)
	}
	c.Task = Task{Type: raw.Task.Type, Index: *raw.Task.Index}
	tasks, known := c.Jobs[c.Task.Type]
	switch {
	case c.Task.Type != Chief && c.Task.Type != Worker && c.Task.Type != PS:
		return nil, fmt.Errorf("%s: unknown task type %q (use chief, worker or ps)", EnvVar, c.Task.Type)
	case !known:
		return nil, fmt.Errorf("%s: this task is %s, but the cluster has no %q job", EnvVar, c.Task, c.Task.Type)
	case c.Task.Index < 0 || c.Task.Index >= len(tasks):
		return nil, fmt.Errorf("%s: task index %d is out of range: job %q has %d task(s)", EnvVar, c.Task.Index, c.Task.Type, len(tasks))
	case tasks[c.Task.Index] == "":
		return nil, fmt.Errorf("%s: this task's address (%s) is missing", EnvVar, c.Task)
	}
	return c, nil
}

// parseSparse reads "sparseCluster": each job is a list of addresses or an
// object from index to address (the operator writes only this worker's).
func parseSparse(jobs map[string]json.RawMessage) (map[string][]string, error) {
	out := map[string][]string{}
	for job, v := range jobs {
		var list []string
		if json.Unmarshal(v, &list) == nil {
			out[job] = list
			continue
		}
		var byIndex map[string]string
		if err := json.Unmarshal(v, &byIndex); err != nil {
			return nil, fmt.Errorf("%s: sparseCluster job %q is neither a list nor an index map of addresses", EnvVar, job)
		}
		idx := make([]int, 0, len(byIndex))
		for k := range byIndex {
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i > 1<<16 {
				return nil, fmt.Errorf("%s: sparseCluster job %q has task index %q", EnvVar, job, k)
			}
			idx = append(idx, i)
		}
		sort.Ints(idx)
		tasks := []string{}
		if len(idx) > 0 {
			tasks = make([]string, idx[len(idx)-1]+1)
		}
		for _, i := range idx {
			tasks[i] = byIndex[strconv.Itoa(i)]
		}
		out[job] = tasks
	}
	return out, nil
}

// ChiefTask is the task that initialises, saves and reports: the chief, or
// worker 0 when there is none.
func (c *Config) ChiefTask() Task {
	if len(c.Jobs[Chief]) > 0 {
		return Task{Type: Chief}
	}
	return Task{Type: Worker}
}

// Replicas are the tasks that train, in order: the chief (if any), then the
// workers. Replica i takes the i-th slice of each global batch.
func (c *Config) Replicas() []Task {
	var r []Task
	for i := range c.Jobs[Chief] {
		r = append(r, Task{Chief, i})
	}
	for i := range c.Jobs[Worker] {
		r = append(r, Task{Worker, i})
	}
	return r
}

// Address is a task's "host:port".
func (c *Config) Address(t Task) string {
	if tasks := c.Jobs[t.Type]; t.Index >= 0 && t.Index < len(tasks) {
		return tasks[t.Index]
	}
	return ""
}

// ErrPublicAddress is wrapped by Check's refusal of a public address.
var ErrPublicAddress = errors.New("resolves to a public IP address")

// Check verifies what training needs beyond Parse: parameter servers and at
// least one replica, the full cluster (not the operator's sparse one), and,
// unless allowPublic, that every address resolves to loopback or private IPs
// only (TensorFlow's runtime authenticates nobody).
func (c *Config) Check(allowPublic bool) error {
	switch {
	case c.Sparse:
		return fmt.Errorf("%s: a sparseCluster (dynamic workers) lists only this worker; synchronous training needs every task: turn dynamic workers off", EnvVar)
	case len(c.Jobs[PS]) == 0:
		return fmt.Errorf("%s: the cluster has no ps task to hold the variables", EnvVar)
	case len(c.Replicas()) == 0:
		return fmt.Errorf("%s: the cluster has no chief or worker to train", EnvVar)
	}
	if allowPublic {
		return nil
	}
	for job, tasks := range c.Jobs {
		for i, a := range tasks {
			host, _, _ := net.SplitHostPort(a)
			ips, err := net.LookupIP(host)
			if err != nil {
				return fmt.Errorf("%s: %s %d's host %q: %w", EnvVar, job, i, host, err)
			}
			for _, ip := range ips {
				if !ip.IsLoopback() && !ip.IsPrivate() && !ip.IsLinkLocalUnicast() {
					return fmt.Errorf("%s: %s %d's address %s %w (%s); TensorFlow's runtime has no authentication: keep the cluster on a private network", EnvVar, job, i, a, ErrPublicAddress, ip)
				}
			}
		}
	}
	return nil
}
