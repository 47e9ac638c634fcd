package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/tfcat/tfcat/internal/testenv"
	"github.com/tfcat/tfcat/tflog"
)

// TestMain lets the scripts run "tfcat" as a command: the test binary itself.
func TestMain(m *testing.M) {
	os.Exit(testscript.RunMain(testenv.RequirePython(m), map[string]func() int{
		"tfcat": func() int {
			code := run(os.Args, os.Stdout, os.Stderr)
			tflog.Flush()
			return code
		},
	}))
}

// TestScripts runs the end-to-end CLI scripts in testdata/script: each one
// drives tfcat as a user would and checks its output and exit status.
func TestScripts(t *testing.T) {
	python := testenv.Python(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("PYTHON", python)
			env.Setenv("TF_CPP_MIN_LOG_LEVEL", "2")
			// The kernel family scripts/numerics.sh chose: testscript starts
			// each script with an environment of its own.
			for _, k := range []string{"TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "OPENCV_CPU_DISABLE", "TFCAT_TEST_FAULT"} {
				if v, ok := os.LookupEnv(k); ok {
					env.Setenv(k, v)
				}
			}
			// The folder testscript put the tfcat command in, for scripts
			// that set a PATH holding nothing else.
			env.Setenv("TFCATBIN", filepath.SplitList(env.Getenv("PATH"))[0])
			// The Python tutorial's reference script (predict.py's loading).
			tutorial, err := filepath.Abs("../../tfsession/testdata/tutorial.py")
			if err != nil {
				return err
			}
			env.Setenv("TUTORIAL_PY", tutorial)
			// The transfer-learning tests' backbones (a Keras MobileNetV2).
			backbones, err := filepath.Abs("../../trainer/testdata/backbones.py")
			if err != nil {
				return err
			}
			env.Setenv("BACKBONES_PY", backbones)
			// Free loopback ports for cluster scripts: PORT0, PORT1, ...
			for i := range 10 {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					return err
				}
				defer ln.Close() // held until all are picked, so they differ
				env.Setenv(fmt.Sprintf("PORT%d", i), fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"json":    cmdJSON,
			"waitfor": cmdWaitFor,
		},
		Condition: scriptCondition, // [gpu] (gpu_test.go)
	})
}

// cmdJSON checks a JSON file: "json FILE" parses it; "json FILE PATH OP VALUE"
// also looks up PATH (dot-separated keys and indexes; "." is the whole value) and compares it: OP is
// "=" (string equality of the JSON value), ">=" or "<=" (numbers), or "len"
// (array length).
func cmdJSON(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 && len(args) != 4 {
		ts.Fatalf("usage: json FILE [PATH OP VALUE]")
	}
	var v any
	data := ts.ReadFile(args[0])
	// JSON Lines: check the last line.
	if lines := strings.Split(strings.TrimSpace(data), "\n"); len(lines) > 1 && strings.HasPrefix(lines[0], "{") && strings.HasPrefix(lines[1], "{") {
		data = lines[len(lines)-1]
	}
	err := json.Unmarshal([]byte(data), &v)
	if len(args) == 1 {
		if (err != nil) != neg {
			ts.Fatalf("%s: valid JSON: %v", args[0], err)
		}
		return
	}
	if err != nil {
		ts.Fatalf("%s: %v", args[0], err)
	}
	var path []string
	if args[1] != "." {
		path = strings.Split(args[1], ".")
	}
	for _, k := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			var i int
			if _, err := fmtSscan(k, &i); err != nil || i < 0 || i >= len(x) {
				ts.Fatalf("%s: no index %s in %s", args[0], k, args[1])
			}
			v = x[i]
		default:
			ts.Fatalf("%s: %s: cannot index %T", args[0], args[1], v)
		}
	}
	ok := false
	switch args[2] {
	case "=":
		b, _ := json.Marshal(v)
		ok = strings.Trim(string(b), `"`) == args[3]
	case ">=", "<=":
		f, isNum := v.(float64)
		var want float64
		if _, err := fmtSscan(args[3], &want); err != nil || !isNum {
			ts.Fatalf("%s: %s is %v, not a number", args[0], args[1], v)
		}
		ok = (args[2] == ">=" && f >= want) || (args[2] == "<=" && f <= want)
	case "len":
		a, isArr := v.([]any)
		var want int
		fmtSscan(args[3], &want)
		ok = isArr && len(a) == want
	default:
		ts.Fatalf("unknown op %s", args[2])
	}
	if ok == neg {
		ts.Fatalf("%s: %s is %v; want %s %s", args[0], args[1], v, args[2], args[3])
	}
}

// cmdWaitFor waits until a file exists, "waitfor FILE [SECONDS]", or until
// a GET of URL answers with a body holding TEXT, "waitfor URL TEXT [SECONDS]"
// (a server that is still loading answers 200 too, so curl's retries cannot
// wait for it); default 60 s. The URL form prints the last body.
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	url := len(args) > 0 && strings.HasPrefix(args[0], "http://")
	n := 1
	if url {
		n = 2
	}
	if neg || len(args) < n || len(args) > n+1 {
		ts.Fatalf("usage: waitfor FILE [SECONDS] | waitfor URL TEXT [SECONDS]")
	}
	limit := 60.0
	if len(args) == n+1 {
		fmtSscan(args[n], &limit)
	}
	deadline := time.Now().Add(time.Duration(limit * float64(time.Second)))
	var body string
	for time.Now().Before(deadline) {
		if url {
			body = httpBody(args[0])
			if strings.Contains(body, args[1]) {
				ts.Logf("%s", body)
				return
			}
		} else if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	if url {
		ts.Fatalf("no %s in %s's answer within %v s; the last was %q", args[1], args[0], limit, body)
	}
	ts.Fatalf("%s did not appear within %v s", args[0], limit)
}

// httpBody GETs url and returns its body, or the error as text.
func httpBody(url string) string {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
