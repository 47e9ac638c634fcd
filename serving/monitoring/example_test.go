package monitoring_test

import (
	"bufio"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/serving/monitoring"
)

// constModel stands in for a tfcat model: 2×2 grey images, two classes.
type constModel struct{}

func (constModel) InputSize() (int, int, int) { return 2, 2, 1 }
func (constModel) NumClasses() int            { return 2 }
func (constModel) Close() error               { return nil }
func (constModel) Predict(x []float32, n int) ([]float32, error) {
	out := make([]float32, 0, 2*n)
	for i := range n {
		out = append(out, 1-x[4*i], x[4*i])
	}
	return out, nil
}

// Serve a model's REST API with its metrics at /monitoring/prometheus/metrics,
// as tfcat serve does, and read the request counts after a prediction and a
// request for a model it does not have.
func Example() {
	m := monitoring.New(monitoring.Options{})
	srv, err := serving.New(constModel{}, serving.Config{Name: "pets", OnBatch: m.OnBatch})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	m.OnVersionState("pets", 1, serving.StateAvailable, nil) // one fixed version
	m.DecodeMemory(func() int64 { return srv.Stats().DecodeMemory })

	mux := http.NewServeMux()
	mux.Handle(monitoring.Path, m.Handler())
	mux.Handle("/", m.HTTP(monitoring.APIREST, serving.NewHandler(serving.One(srv))))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	for _, path := range []string{"/v1/models/pets/versions/1:predict", "/v1/models/cats:predict"} {
		resp, err := http.Post(ts.URL+path, "application/json", strings.NewReader(`{"instances": [[[[0.75], [0]], [[0], [0]]]]}`))
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
	}

	resp, err := http.Get(ts.URL + monitoring.Path)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		if l := lines.Text(); strings.HasPrefix(l, "tfcat_requests_total") || strings.HasPrefix(l, "tfcat_batch_size_count") || strings.HasPrefix(l, "tfcat_model_versions") {
			fmt.Println(l)
		}
	}
	// Output:
	// tfcat_batch_size_count{model="pets"} 1
	// tfcat_model_versions{model="pets",state="AVAILABLE"} 1
	// tfcat_model_versions{model="pets",state="LOADING"} 0
	// tfcat_model_versions{model="pets",state="START"} 0
	// tfcat_model_versions{model="pets",state="UNLOADING"} 0
	// tfcat_requests_total{api="rest",code="200",method="Predict",model="pets",version="1"} 1
	// tfcat_requests_total{api="rest",code="404",method="Predict",model="",version=""} 1
}
