package servables

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	configpb "github.com/wamuir/graft/tensorflow/serving/config_go_proto"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/tfsession"
)

var (
	sprintf             = fmt.Sprintf
	defaultModelOptions = model.Options{Session: tfsession.SessionConfig{Device: tfsession.DeviceCPU, IntraOpThreads: 1, InterOpThreads: 1}}
)

// TestNewVersionSwapsIn: version 2 appears and replaces version 1 (latest 1,
// the default), which is unloaded; a broken version 3 is refused with its
// reason and version 2 keeps serving; once version 3's folder is fixed it
// loads.
func TestNewVersionSwapsIn(t *testing.T) {
	for _, how := range []string{brokenOp, brokenTruncated, brokenEmpty} {
		t.Run(how, func(t *testing.T) {
			base := t.TempDir()
			v1, v2 := savedModel(t, small, 1), savedModel(t, small, 2)
			deploy(t, v1, base, 1)
			logs := &logBuffer{}
			m, err := New(SingleModel("pets", base), fastOptions(logs))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if v := latest(m, "pets"); v != 1 {
				t.Fatalf("latest %d after New, want 1", v)
			}

			deploy(t, v2, base, 2)
			eventually(t, 10*time.Second, "version 2 served", func() bool { return latest(m, "pets") == 2 })
			eventually(t, 10*time.Second, "version 1 unloaded", func() bool {
				return maps.Equal(states(t, m, "pets"), map[int64]serving.VersionState{1: serving.StateEnd, 2: serving.StateAvailable})
			})

			tmp := filepath.Join(base, "3.partial")
			breakModel(t, v1, tmp, how)
			if err := os.Rename(tmp, filepath.Join(base, "3")); err != nil {
				t.Fatal(err)
			}
			var st []serving.VersionStatus
			eventually(t, 10*time.Second, "version 3 refused", func() bool {
				st, err = m.Status(serving.ModelSpec{Name: "pets", Version: 3})
				return err == nil && st[0].State == serving.StateEnd && st[0].Err != nil
			})
			if v := latest(m, "pets"); v != 2 {
				t.Errorf("latest %d after a broken version 3, want 2", v)
			}
			msg := st[0].Err.Error()
			wantCode := map[string]corepb.Code{brokenOp: corepb.Code_INVALID_ARGUMENT, brokenTruncated: corepb.Code_UNKNOWN, brokenEmpty: corepb.Code_NOT_FOUND}[how]
			if !strings.Contains(msg, filepath.Join(base, "3")) || serving.ErrorCode(st[0].Err) != wantCode {
				t.Errorf("version 3's error %q (%v), want one naming its folder, code %v", msg, serving.ErrorCode(st[0].Err), wantCode)
			}
			if how == brokenOp && !strings.Contains(msg, "WriteFile") {
				t.Errorf("version 3's error %q does not name the op", msg)
			}
			if !slices.ContainsFunc(logs.all(), func(l string) bool { return strings.Contains(l, "version 3") && strings.Contains(l, msg) }) {
				t.Errorf("no log line for version 3's failure in %q", logs.all())
			}

			// Not retried while the folder stays as it is ...
			time.Sleep(100 * time.Millisecond)
			if n := countLines(logs.all(), "version 3: loading"); n != 1 {
				t.Errorf("version 3 tried %d times, want once", n)
			}
			// ... and loaded once it is fixed.
			os.RemoveAll(filepath.Join(base, "3"))
			deploy(t, v1, base, 3)
			eventually(t, 10*time.Second, "fixed version 3 served", func() bool { return latest(m, "pets") == 3 })
		})
	}
}

func countLines(lines []string, substr string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// config is a ModelServerConfig in text form for the test's base paths.
func config(t testing.TB, text string, args ...any) *configpb.ModelServerConfig {
	t.Helper()
	cfg, err := ParseConfig([]byte(fmt.Sprintf(text, args...)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPolicies: TensorFlow Serving's version policies and labels over
// versions 1, 2 and 3.
func TestPolicies(t *testing.T) {
	base := t.TempDir()
	for n := range int64(3) {
		deploy(t, savedModel(t, small, n+1), base, n+1)
	}
	for _, c := range []struct {
		policy    string
		available []int64
	}{
		{``, []int64{3}},
		{`model_version_policy { latest { } }`, []int64{3}},
		{`model_version_policy { latest { num_versions: 2 } }`, []int64{2, 3}},
		{`model_version_policy { all { } }`, []int64{1, 2, 3}},
		{`model_version_policy { specific { versions: 1 versions: 3 versions: 7 } }`, []int64{1, 3}},
	} {
		t.Run(c.policy, func(t *testing.T) {
			m, err := New(config(t, `model_config_list { config { name: "pets" base_path: %q %s
				version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 3 } } }`, base, c.policy),
				Options{Poll: -1, Model: defaultModelOptions})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			var got []int64
			for v, s := range states(t, m, "pets") {
				if s == serving.StateAvailable {
					got = append(got, v)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, c.available) {
				t.Errorf("available %v, want %v", got, c.available)
			}
			if v := latest(m, "pets"); v != slices.Max(c.available) {
				t.Errorf("latest %d", v)
			}
			for _, want := range c.available {
				srv, v, release, err := m.Acquire(serving.ModelSpec{Name: "pets", Version: want})
				if err != nil || v != want || srv == nil {
					t.Errorf("version %d: %v %d", want, err, v)
					continue
				}
				release()
			}
			for label, want := range map[string]int64{"stable": 1, "canary": 3} {
				_, v, release, err := m.Acquire(serving.ModelSpec{Name: "pets", Label: label})
				if slices.Contains(c.available, want) {
					if err != nil || v != want {
						t.Errorf("label %s: %v %d, want version %d", label, err, v, want)
					} else {
						release()
					}
				} else if _, ok := err.(*serving.NotFoundError); !ok || !strings.Contains(err.Error(), "label "+label) {
					t.Errorf("label %s of an unavailable version: %v", label, err)
				}
			}
			for _, spec := range []serving.ModelSpec{{Name: "dogs"}, {Name: "pets", Version: 2, Label: ""}, {Name: "pets", Label: "beta"}} {
				if spec.Version == 2 && slices.Contains(c.available, 2) {
					continue
				}
				if _, _, _, err := m.Acquire(spec); !errors.As(err, new(*serving.NotFoundError)) {
					t.Errorf("%v: %v, want NotFound", spec, err)
				}
			}
		})
	}
}

// TestReload: models added and removed, a policy changed, and configs that
// are refused leaving the old one serving.
func TestReload(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	deploy(t, savedModel(t, small, 1), a, 1)
	deploy(t, savedModel(t, small, 1), b, 1)
	deploy(t, savedModel(t, small, 2), b, 2)
	logs := &logBuffer{}
	m, err := New(config(t, `model_config_list { config { name: "a" base_path: %q } }`, a), fastOptions(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := m.Names(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("names %v", got)
	}

	for _, c := range []struct{ name, text, want string }{
		{"duplicate name", `model_config_list { config { name: "a" base_path: %[1]q } config { name: "a" base_path: %[1]q } }`, "used twice"},
		{"missing base path", `model_config_list { config { name: "a" base_path: "/nonexistent/models/a" } } # %[1]q`, "no such file"},
		{"bad name", `model_config_list { config { name: "a/b" base_path: %[1]q } }`, "name must be"},
		{"other platform", `model_config_list { config { name: "a" base_path: %[1]q model_platform: "pytorch" } }`, "TensorFlow models only"},
		{"empty specific", `model_config_list { config { name: "a" base_path: %[1]q model_version_policy { specific { } } } }`, "no versions"},
		{"bad label", `model_config_list { config { name: "a" base_path: %[1]q version_labels { key: "x" value: -1 } } }`, "must be positive"},
		{"custom config", `custom_model_config { } # %[1]q`, "not supported"},
	} {
		err := m.Reload(config(t, c.text, a))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
		if v := latest(m, "a"); v != 1 || !slices.Equal(m.Names(), []string{"a"}) {
			t.Errorf("%s: the old config stopped serving: %v %d", c.name, m.Names(), v)
		}
	}
	if _, err := ParseConfig([]byte(`model_config_list { config { name: "a" base_pth: "x" } }`)); err == nil || !strings.Contains(err.Error(), "base_pth") {
		t.Errorf("syntax error: %v", err)
	}

	// Add b with all its versions; Reload returns once they are loaded.
	if err := m.Reload(config(t, `model_config_list { config { name: "a" base_path: %q } config { name: "b" base_path: %q model_version_policy { all {} } } }`, a, b)); err != nil {
		t.Fatal(err)
	}
	if got := states(t, m, "b"); !maps.Equal(got, map[int64]serving.VersionState{1: serving.StateAvailable, 2: serving.StateAvailable}) {
		t.Errorf("b after Reload: %v", got)
	}
	// Hold a request on a's version 1, then remove a: the request keeps its
	// version until it releases it.
	srv, _, release, err := m.Acquire(serving.ModelSpec{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(config(t, `model_config_list { config { name: "b" base_path: %q model_version_policy { latest {} } } }`, b)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Names(), []string{"b"}) || latest(m, "a") != 0 {
		t.Errorf("a still served: %v", m.Names())
	}
	if code := predict(t, srv, "a", 0); code != 200 {
		t.Errorf("a request holding a removed model's version: %d", code)
	}
	release()
	eventually(t, 5*time.Second, "b's version 1 unloaded by the new policy", func() bool {
		return states(t, m, "b")[1] == serving.StateEnd
	})
	if got := m.Config().GetModelConfigList().GetConfig(); len(got) != 1 || got[0].GetName() != "b" {
		t.Errorf("Config: %v", got)
	}

	// Move b to another base path: the old one answers until the new one
	// has a version.
	if err := m.Reload(config(t, `model_config_list { config { name: "b" base_path: %q } }`, a)); err != nil {
		t.Fatal(err)
	}
	if v := latest(m, "b"); v != 1 {
		t.Errorf("b from its new base path: latest %d, want 1", v)
	}

	// A model added none of whose versions loads is an error; the config
	// is applied all the same.
	broken := t.TempDir()
	breakModel(t, savedModel(t, small, 1), filepath.Join(broken, "1"), brokenTruncated)
	err = m.Reload(config(t, `model_config_list { config { name: "b" base_path: %q } config { name: "c" base_path: %q } }`, a, broken))
	if err == nil || !strings.Contains(err.Error(), "model c: version 1") {
		t.Errorf("a model that fails to load: %v", err)
	}
}

// TestFolderBeingWritten: a version folder written in place, file by file
// with pauses (not renamed into place), is never served half-written, and
// is served once complete.
func TestFolderBeingWritten(t *testing.T) {
	base := t.TempDir()
	deploy(t, savedModel(t, small, 1), base, 1)
	m, err := New(SingleModel("pets", base), fastOptions(&logBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	src := savedModel(t, small, 2)
	dst := filepath.Join(base, "2")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(src)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, e := range entries {
			// Pauses shorter and longer than the settle time and the poll.
			time.Sleep(time.Duration(10+40*(i%3)) * time.Millisecond)
			in, _ := os.ReadFile(filepath.Join(src, e.Name()))
			f, err := os.Create(filepath.Join(dst, e.Name()))
			if err != nil {
				t.Error(err)
				return
			}
			f.Write(in[:len(in)/2])
			time.Sleep(25 * time.Millisecond)
			f.Write(in[len(in)/2:])
			f.Close()
		}
	}()
	for {
		select {
		case <-done:
			eventually(t, 10*time.Second, "version 2 served once written", func() bool { return latest(m, "pets") == 2 })
			return
		default:
		}
		if v := latest(m, "pets"); v != 1 {
			t.Fatalf("version %d served while version 2 was being written", v)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestDeletedWhileServing: the served version's folder is deleted while a
// request holds it; the policy falls back to version 1, the request
// finishes on version 2, which is then unloaded and leaves the status.
func TestDeletedWhileServing(t *testing.T) {
	base := t.TempDir()
	deploy(t, savedModel(t, small, 1), base, 1)
	deploy(t, savedModel(t, small, 2), base, 2)
	m, err := New(SingleModel("pets", base), fastOptions(&logBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	srv, v, release, err := m.Acquire(serving.ModelSpec{Name: "pets"})
	if err != nil || v != 2 {
		t.Fatalf("%v %d", err, v)
	}
	if err := os.RemoveAll(filepath.Join(base, "2")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "version 1 served", func() bool { return latest(m, "pets") == 1 })
	if got := states(t, m, "pets")[2]; got != serving.StateUnloading {
		t.Errorf("version 2 held by a request: %v, want UNLOADING", got)
	}
	if code := predict(t, srv, "pets", 2); code != 200 {
		t.Errorf("a request holding the deleted version: %d", code)
	}
	release()
	release() // twice is harmless
	eventually(t, 5*time.Second, "version 2 gone", func() bool { _, ok := states(t, m, "pets")[2]; return !ok })
}

// TestEmptyBasePath: a model whose base path holds no version is served
// once one appears; emptying it unloads everything, as TensorFlow Serving
// does.
func TestEmptyBasePath(t *testing.T) {
	base := t.TempDir()
	m, err := New(SingleModel("pets", base), fastOptions(&logBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Status(serving.ModelSpec{Name: "pets"}); err == nil || !strings.Contains(err.Error(), "Could not find any versions") {
		t.Errorf("status of no versions: %v", err)
	}
	deploy(t, savedModel(t, small, 1), base, 1)
	eventually(t, 10*time.Second, "version 1 served", func() bool { return latest(m, "pets") == 1 })
	os.RemoveAll(filepath.Join(base, "1"))
	eventually(t, 10*time.Second, "version 1 unloaded", func() bool { return latest(m, "pets") == 0 })
}

// TestNewFails: a model none of whose versions loads fails New, naming the
// folder.
func TestNewFails(t *testing.T) {
	base := t.TempDir()
	breakModel(t, savedModel(t, small, 1), filepath.Join(base, "1"), brokenOp)
	_, err := New(SingleModel("pets", base), Options{Poll: -1, Model: defaultModelOptions})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(base, "1")) || !errors.Is(err, checkpoint.ErrUntrustedGraph) {
		t.Errorf("New on a broken version: %v", err)
	}
	trusted := defaultModelOptions
	trusted.Trust = true
	m, err := New(SingleModel("pets", base), Options{Poll: -1, Model: trusted})
	if err != nil {
		t.Fatalf("trusted: %v", err)
	}
	m.Close()
}

// predict posts one blank 8×8 image to h's model name (at version, when
// not 0) and returns the status code.
func predict(t testing.TB, h http.Handler, name string, version int64) int {
	t.Helper()
	path := "/v1/models/" + name
	if version != 0 {
		path += "/versions/" + strconv.FormatInt(version, 10)
	}
	body := `{"instances": [` + string(serving.AppendTensorJSON(nil, make([]float32, 64), 8, 8, 1)) + `]}`
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", path+":predict", strings.NewReader(body)))
	if w.Code != 200 {
		t.Logf("%s: %d %s", path, w.Code, w.Body)
	}
	return w.Code
}

// TestLinkedVersion: a version folder that is a link to the model (as
// Kubernetes volumes and deployment tools make them) is served.
func TestLinkedVersion(t *testing.T) {
	base := t.TempDir()
	if err := os.Symlink(savedModel(t, small, 1), filepath.Join(base, "4")); err != nil {
		t.Fatal(err)
	}
	fp, err := fingerprint(filepath.Join(base, "4"))
	if err != nil {
		t.Fatal(err)
	}
	if direct, _ := fingerprint(savedModel(t, small, 1)); fp != direct {
		t.Errorf("the link's fingerprint %s differs from its folder's %s", fp, direct)
	}
	m, err := New(SingleModel("pets", base), Options{Poll: -1, Model: defaultModelOptions})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if v := latest(m, "pets"); v != 4 {
		t.Errorf("latest %d, want 4", v)
	}
}
