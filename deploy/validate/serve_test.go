package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestServe runs the tfcat binary that $TFCAT_BIN names with each manifest's
// own `tfcat serve` args (the Deployment's, and the ServingRuntime's rendered
// for an InferenceService), only the addresses moved to free loopback ports
// and the model path to a small model trained and exported here: serve must
// start, every probe's path must answer 200 on the REST port within the
// startup probe's allowance, the gRPC port must accept connections, and
// SIGTERM must stop it with exit status 0 within the grace period. It needs
// a built tfcat (and its libtensorflow); scripts/check-manifests.sh --serve
// BIN sets TFCAT_BIN.
func TestServe(t *testing.T) {
	bin := os.Getenv("TFCAT_BIN")
	if bin == "" {
		t.Skip("TFCAT_BIN is not set: no tfcat binary to run the manifests' args with (scripts/check-manifests.sh --serve bin/tfcat)")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	opts := loadOptions(t)
	objs, errs := Validate(opts, manifests, readManifests(t))
	if len(errs) > 0 {
		t.Fatalf("the manifests do not validate: %v", errs)
	}
	base := trainModel(t, bin)

	type target struct {
		name string
		ctr  corev1.Container
		args []string
		want serveWant
	}
	var targets []target
	for _, o := range objs {
		switch obj := o.Obj.(type) {
		case *appsv1.Deployment:
			for _, c := range obj.Spec.Template.Spec.Containers {
				if isTfcatImage(c.Image) {
					targets = append(targets, target{o.String(), c, c.Args, deploymentServe})
				}
			}
		case *ServingRuntime:
			for _, c := range obj.Spec.Containers {
				if c.Name == kserveContainer {
					args, err := renderArgs(c.Args)
					if err != nil {
						t.Fatal(err)
					}
					targets = append(targets, target{o.String(), c, args, kserveServe})
				}
			}
		}
	}
	if len(targets) != 2 {
		t.Fatalf("found %d serve containers, want the Deployment's and the ServingRuntime's", len(targets))
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			a, err := ParseArgs(opts.Commands, tg.args)
			if err != nil {
				t.Fatal(err)
			}
			restPort, grpcPort := freePort(t), freePort(t)
			repl := map[string]string{
				"addr":      fmt.Sprintf("127.0.0.1:%d", restPort),
				"grpc-addr": fmt.Sprintf("127.0.0.1:%d", grpcPort),
			}
			for _, f := range []string{"model-base-path", "model"} {
				if _, ok := a.Get(f); ok {
					repl[f] = base
				}
			}
			args, err := replaceFlags(opts.Commands, tg.args, repl)
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			cmd := exec.Command(bin, args...)
			cmd.Stdout, cmd.Stderr = &log, &log
			cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer func() {
				if cmd.ProcessState == nil {
					cmd.Process.Kill()
					<-exited
				}
			}()
			t.Logf("tfcat %s", strings.Join(args, " "))

			// The startup probe's allowance: period × failure threshold.
			start := tg.ctr.StartupProbe
			if start == nil {
				start = tg.ctr.LivenessProbe
			}
			allow := time.Duration(max(start.PeriodSeconds, 1)*max(start.FailureThreshold, 1)) * time.Second
			rest := fmt.Sprintf("http://127.0.0.1:%d", restPort)
			deadline := time.Now().Add(allow)
			for {
				if code, _ := get(rest + start.HTTPGet.Path); code == http.StatusOK {
					break
				}
				select {
				case err := <-exited:
					t.Fatalf("tfcat serve exited before its %s answered: %v\n%s", start.HTTPGet.Path, err, log.String())
				case <-time.After(200 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s did not answer 200 within %v\n%s", start.HTTPGet.Path, allow, log.String())
				}
			}
			for _, p := range probes(&tg.ctr) {
				code, body := get(rest + p.probe.HTTPGet.Path)
				if code != http.StatusOK {
					t.Errorf("%s %s: %d %s", p.field, p.probe.HTTPGet.Path, code, body)
				}
			}
			conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", grpcPort), 2*time.Second)
			if err != nil {
				t.Errorf("gRPC port: %v", err)
			} else {
				conn.Close()
			}

			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				if err != nil {
					t.Errorf("SIGTERM: %v\n%s", err, log.String())
				}
			case <-time.After(30 * time.Second):
				t.Errorf("tfcat serve still running 30 s after SIGTERM\n%s", log.String())
			}
		})
	}
}

// trainModel trains and exports a small two-class model with the binary and
// returns a base path holding it as version 1.
func trainModel(t *testing.T, bin string) string {
	t.Helper()
	dir := t.TempDir()
	r := rand.New(rand.NewSource(1))
	for c, base := range map[string]color.RGBA{"cats": {200, 60, 60, 255}, "dogs": {60, 60, 200, 255}} {
		d := filepath.Join(dir, "data", c)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 8 {
			img := image.NewRGBA(image.Rect(0, 0, 32, 32))
			for p := 0; p < len(img.Pix); p += 4 {
				n := uint8(r.Intn(40))
				img.Pix[p], img.Pix[p+1], img.Pix[p+2], img.Pix[p+3] = base.R-n, base.G+n, base.B-n, 255
			}
			var b bytes.Buffer
			if err := png.Encode(&b, img); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, strconv.Itoa(i)+".png"), b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	base := filepath.Join(dir, "models")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"train", "--data", filepath.Join(dir, "data"), "--size", "32", "--iterations", "5", "--batch", "8", "--model-dir", filepath.Join(dir, "ckpt"), "-q"},
		{"export", "--model", filepath.Join(dir, "ckpt"), "--out", filepath.Join(base, "1"), "-q"},
	} {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tfcat %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return base
}

// replaceFlags gives the flags named in repl (by their names, not aliases)
// new values, in whichever form (--f v or --f=v) args gives them.
func replaceFlags(cmds map[string]Command, args []string, repl map[string]string) ([]string, error) {
	cmd := cmds[args[0]]
	out := slices.Clone(args)
	for i := 1; i < len(out); i++ {
		name := strings.TrimLeft(out[i], "-")
		name, _, hasValue := strings.Cut(name, "=")
		f := cmd[name]
		if f == nil {
			return nil, fmt.Errorf("no flag %s", out[i])
		}
		v, ok := repl[f.Name]
		switch {
		case f.Bool:
		case hasValue:
			if ok {
				out[i] = out[i][:strings.IndexByte(out[i], '=')+1] + v
			}
		default:
			i++
			if ok {
				out[i] = v
			}
		}
	}
	return out, nil
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func get(url string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, strings.TrimSpace(b.String())
}
