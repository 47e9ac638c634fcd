package serving_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tfcat/tfcat/serving"
)

// constModel stands in for a tfcat model (a *tfsession.Session, an imported
// checkpoint or a *savedmodel.Model): 2×2 grey images, two classes.
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

// Serve a model with TensorFlow Serving's REST API and ask it for a prediction.
func Example() {
	srv, err := serving.New(constModel{}, serving.Config{Name: "pets", Classes: []string{"cat", "dog"}})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv) // or &http.Server{Addr: "127.0.0.1:8501", Handler: srv}
	defer ts.Close()

	resp, err := http.Post(ts.URL+"/v1/models/pets:predict", "application/json",
		strings.NewReader(`{"instances": [[[[0.75], [0]], [[0], [0]]]]}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.StatusCode, " ", string(body))
	// Output:
	// 200 {"predictions":[{"probabilities":[0.25,0.75],"classes":1}]}
}
