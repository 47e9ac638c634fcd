package cluster

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		task       Task
		replicas   []Task
		chief      Task
		sparse     bool
	}{
		{"chief and worker", `{"cluster": {"chief": ["c:2222"], "worker": ["w0:2222", "w1:2222"], "ps": ["p:2222"]}, "task": {"type": "worker", "index": 1}}`,
			Task{Worker, 1}, []Task{{Chief, 0}, {Worker, 0}, {Worker, 1}}, Task{Chief, 0}, false},
		{"worker 0 is the chief", `{"cluster": {"worker": ["w0:2222", "w1:2222"], "ps": ["p0:2222", "p1:2222"]}, "task": {"type": "ps", "index": 1}}`,
			Task{PS, 1}, []Task{{Worker, 0}, {Worker, 1}}, Task{Worker, 0}, false},
		// What the Kubeflow training operator writes for a TFJob pod.
		{"operator", `{"cluster":{"ps":["job-ps-0.ns.svc:2222"],"worker":["job-worker-0.ns.svc:2222","job-worker-1.ns.svc:2222"]},"task":{"type":"worker","index":0},"environment":"cloud"}`,
			Task{Worker, 0}, []Task{{Worker, 0}, {Worker, 1}}, Task{Worker, 0}, false},
		// The operator with dynamic workers: this worker only.
		{"operator sparse", `{"sparseCluster":{"ps":["job-ps-0.ns.svc:2222"],"worker":{"1":"job-worker-1.ns.svc:2222"}},"task":{"type":"worker","index":1},"environment":"cloud"}`,
			Task{Worker, 1}, []Task{{Worker, 0}, {Worker, 1}}, Task{Worker, 0}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if c.Task != tc.task || !slices.Equal(c.Replicas(), tc.replicas) || c.ChiefTask() != tc.chief || c.Sparse != tc.sparse {
				t.Errorf("task %v replicas %v chief %v sparse %v", c.Task, c.Replicas(), c.ChiefTask(), c.Sparse)
			}
			if tc.name == "operator" && c.Environment != "cloud" {
				t.Errorf("environment %q", c.Environment)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const ok = `"cluster": {"worker": ["127.0.0.1:2222"], "ps": ["127.0.0.1:2223"]}`
	for _, tc := range []struct{ name, json, want string }{
		{"bad JSON", `{"cluster": `, "not valid JSON"},
		{"no cluster", `{"task": {"type": "worker", "index": 0}}`, `no "cluster"`},
		{"unknown task type", `{` + ok + `, "task": {"type": "evaluator", "index": 0}}`, `unknown task type "evaluator"`},
		{"unknown job", `{"cluster": {"master": ["a:1"]}, "task": {"type": "worker", "index": 0}}`, `unknown job "master"`},
		{"index out of range", `{` + ok + `, "task": {"type": "worker", "index": 1}}`, "index 1 is out of range"},
		{"negative index", `{` + ok + `, "task": {"type": "worker", "index": -1}}`, "out of range"},
		{"no index", `{` + ok + `, "task": {"type": "worker"}}`, "no task index"},
		{"job not in cluster", `{"cluster": {"ps": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}`, `no "worker" job`},
		{"two chiefs", `{"cluster": {"chief": ["a:1", "b:1"], "ps": ["c:1"]}, "task": {"type": "ps", "index": 0}}`, "2 chiefs"},
		{"address not host:port", `{"cluster": {"worker": ["nohost"], "ps": ["c:1"]}, "task": {"type": "ps", "index": 0}}`, "not host:port"},
		{"own address missing", `{"sparseCluster": {"worker": {"1": "w:1"}, "ps": ["p:1"]}, "task": {"type": "worker", "index": 0}}`, "address (worker 0) is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err %v, want one line mentioning %q", err, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	parse := func(s string) *Config {
		c, err := Parse([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	local := parse(`{"cluster": {"worker": ["127.0.0.1:2222"], "ps": ["10.1.2.3:2222", "192.168.0.5:1"]}, "task": {"type": "worker", "index": 0}}`)
	if err := local.Check(false); err != nil {
		t.Errorf("private and loopback addresses refused: %v", err)
	}
	public := parse(`{"cluster": {"worker": ["127.0.0.1:2222"], "ps": ["8.8.8.8:2222"]}, "task": {"type": "worker", "index": 0}}`)
	if err := public.Check(false); !errors.Is(err, ErrPublicAddress) || !strings.Contains(err.Error(), "ps 0") {
		t.Errorf("public address: %v, want ErrPublicAddress naming ps 0", err)
	}
	if err := public.Check(true); err != nil {
		t.Errorf("public address allowed: %v", err)
	}
	noPS := parse(`{"cluster": {"worker": ["127.0.0.1:2222"]}, "task": {"type": "worker", "index": 0}}`)
	if err := noPS.Check(false); err == nil || !strings.Contains(err.Error(), "no ps") {
		t.Errorf("no ps: %v", err)
	}
	sparse := parse(`{"sparseCluster": {"worker": {"0": "127.0.0.1:1"}, "ps": ["127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}`)
	if err := sparse.Check(false); err == nil || !strings.Contains(err.Error(), "sparseCluster") {
		t.Errorf("sparse cluster: %v", err)
	}
}

func TestDeviceFilters(t *testing.T) {
	c, _ := Parse([]byte(`{"cluster": {"worker": ["a:1", "b:1"], "ps": ["c:1"]}, "task": {"type": "worker", "index": 1}}`))
	if got := c.DeviceFilters(); !slices.Equal(got, []string{"/job:ps", "/job:worker/task:1"}) {
		t.Errorf("filters %v", got)
	}
	if got := c.Others(); len(got) != 2 || got[0] != (Task{Worker, 0}) || got[1] != (Task{PS, 0}) {
		t.Errorf("others %v", got)
	}
}
