package servables

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/tfsession"
)

// TestSwapsUnderLoad: 20 versions swapped in while clients keep asking the
// REST API for predictions: no request fails, and every answer is one of
// the two models' answers.
func TestSwapsUnderLoad(t *testing.T) {
	const swaps, clients = 20, 8
	base := t.TempDir()
	srcs := [2]string{savedModel(t, small, 1), savedModel(t, small, 2)}
	deploy(t, srcs[1], base, 1)
	m, err := New(SingleModel("pets", base), fastOptions(&logBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ts := httptest.NewServer(serving.NewHandler(m))
	defer ts.Close()
	body := `{"instances": [` + string(serving.AppendTensorJSON(nil, make([]float32, 64), 8, 8, 1)) + `]}`

	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		ok       atomic.Int64
		mu       sync.Mutex
		failures []string
		answers  = map[string]int{}
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Post(ts.URL+"/v1/models/pets:predict", "application/json", strings.NewReader(body))
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode != 200 {
					failures = append(failures, strconv.Itoa(resp.StatusCode)+" "+string(b))
				} else {
					answers[string(b)]++
				}
				mu.Unlock()
				ok.Add(1)
			}
		}()
	}
	t0 := time.Now()
	for n := int64(2); n <= swaps+1; n++ {
		deploy(t, srcs[n%2], base, n)
		eventually(t, 20*time.Second, "version "+strconv.FormatInt(n, 10)+" served", func() bool { return latest(m, "pets") == n })
		// Old folders go, as a deployment would prune them.
		os.RemoveAll(filepath.Join(base, strconv.FormatInt(n-1, 10)))
	}
	took := time.Since(t0)
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed; first: %s", len(failures), ok.Load(), failures[0])
	}
	if len(answers) != 2 {
		t.Errorf("%d distinct answers, want the two models': %v", len(answers), answers)
	}
	eventually(t, 5*time.Second, "the old versions unloaded and forgotten", func() bool {
		st := states(t, m, "pets")
		return len(st) == 1 && st[swaps+1] == serving.StateAvailable
	})
	t.Logf("%d requests over %d swaps in %v, none failed", ok.Load(), swaps, took.Round(time.Millisecond))
}

// vmRSS is the process's resident set size in bytes (/proc/self/status).
func vmRSS(t testing.TB) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Skip("no VmRSS line")
	return 0
}

// TestUnloadReturnsMemory measures RSS as versions of a model with 64 MB of
// weights replace each other (latest 1), in a fresh process each for two
// allocators: TensorFlow's default and, with TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1,
// malloc. Where oneDNN is on, TensorFlow's default is oneDNN's pool, which
// keeps what an unloaded version freed for the next one: RSS stays at its
// level after the first swap (two versions loaded at once) and does not grow.
// malloc hands it back: after each swap RSS is one version's.
func TestUnloadReturnsMemory(t *testing.T) {
	if dir := os.Getenv("SERVABLES_RSS_MODEL"); dir != "" {
		measureUnload(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("writes a 64 MB model")
	}
	big := small
	big.Height, big.Width, big.FC = 128, 128, 1024 // 16384×1024 weights in the first dense layer
	src := savedModel(t, big, 1)
	fi, err := os.Stat(filepath.Join(src, "dogs-cats-model.data-00000-of-00001"))
	if err != nil {
		t.Fatal(err)
	}
	weights := fi.Size()
	for _, sys := range []bool{false, true} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestUnloadReturnsMemory$", "-test.v")
		cmd.Env = append(os.Environ(), "SERVABLES_RSS_MODEL="+src, "TF_CPP_MIN_LOG_LEVEL=2")
		if sys {
			cmd.Env = append(cmd.Env, "TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1")
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		m := regexp.MustCompile(`rss before=(\d+) one=(\d+) swap1=(\d+) swap2=(\d+) swap3=(\d+) closed=(\d+)`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("no measurement in %s", out)
		}
		var v [6]int64
		start, _ := strconv.ParseInt(m[1], 10, 64)
		for i := range v {
			v[i], _ = strconv.ParseInt(m[i+1], 10, 64)
			v[i] -= start
		}
		one, swap1, swap2, swap3, closed := v[1], v[2], v[3], v[4], v[5]
		mb := func(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB" }
		name := map[bool]string{false: "TensorFlow's allocator", true: "malloc (TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1)"}[sys]
		t.Logf("%s, weights %s: RSS over the start with one version +%s, after swaps 1, 2, 3 (the old one unloaded) +%s +%s +%s, after Close +%s",
			name, mb(weights), mb(one), mb(swap1), mb(swap2), mb(swap3), mb(closed))
		if one < weights*3/4 {
			t.Fatalf("%s: loading a version grew RSS by %s only: the measure cannot see it", name, mb(one))
		}
		// Every allocator: no growth from swap to swap.
		if swap3 > swap1+weights/4 {
			t.Errorf("%s: RSS grows from swap to swap: %s, then %s", name, mb(swap1), mb(swap3))
		}
		if sys && (swap1 > one+weights/4 || swap3 > one+weights/4 || closed > weights/4) {
			t.Errorf("%s: an unloaded version's memory was not returned", name)
		}
	}
}

// measureUnload is TestUnloadReturnsMemory's child process.
func measureUnload(t *testing.T, src string) {
	// TensorFlow's own start-up memory is not the model's: warm it up with
	// a small model, loaded and unloaded.
	warm := t.TempDir()
	deploy(t, savedModel(t, small, 1), warm, 1)
	w, err := New(SingleModel("warm", warm), Options{Poll: -1, Model: defaultModelOptions})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	base := t.TempDir()
	deploy(t, src, base, 1)
	rss := []int64{vmRSS(t)}
	m, err := New(SingleModel("big", base), fastOptions(&logBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	rss = append(rss, vmRSS(t))
	for n := int64(2); n <= 4; n++ {
		deploy(t, src, base, n)
		eventually(t, 60*time.Second, "the swap", func() bool {
			return latest(m, "big") == n && states(t, m, "big")[n-1] == serving.StateEnd
		})
		os.RemoveAll(filepath.Join(base, strconv.FormatInt(n-1, 10)))
		rss = append(rss, vmRSS(t))
	}
	m.Close()
	rss = append(rss, vmRSS(t))
	fmt.Printf("rss before=%d one=%d swap1=%d swap2=%d swap3=%d closed=%d\n", rss[0], rss[1], rss[2], rss[3], rss[4], rss[5])
}

// BenchmarkPredict runs the tutorial's network (128×128×3) on batches of 1
// and 32 blank images: run it with and without
// TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1 to see what malloc, which hands an
// unloaded version's memory back (TestUnloadReturnsMemory), costs against
// oneDNN's pool.
func BenchmarkPredict(b *testing.B) {
	src := savedModel(b, network.Tutorial(2), 1)
	m, err := model.Open(src, model.Options{Session: tfsession.SessionConfig{Device: tfsession.DeviceCPU}})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	for _, n := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			x := make([]float32, n*128*128*3)
			if _, err := m.Predict(x, n); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := m.Predict(x, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
