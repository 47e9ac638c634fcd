package servables_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/tfcat/tfcat/network"
	"github.com/tfcat/tfcat/servables"
	"github.com/tfcat/tfcat/serving"
	"github.com/tfcat/tfcat/tfgraph"
	"github.com/tfcat/tfcat/tfsession"
)

// saveVersion writes an untrained tfcat model for 8×8 grey images of two
// classes as version n under base: into a temporary folder, renamed when
// complete, as versions should be deployed.
func saveVersion(base string, n int) {
	m, err := tfgraph.Build(network.Tutorial(2).WithInput(8, 8, 1), tfgraph.BuildOptions{Seed: int64(n), InferenceOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	s, err := tfsession.NewSession(m, tfsession.SessionConfig{Device: tfsession.DeviceCPU})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.Init(); err != nil {
		log.Fatal(err)
	}
	tmp := filepath.Join(base, fmt.Sprintf(".%d.tmp", n))
	if _, err := s.Save(tfsession.SaveOptions{Dir: tmp}, network.Info{Classes: []string{"cat", "dog"}}); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(base, fmt.Sprint(n))); err != nil {
		log.Fatal(err)
	}
}

func get(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Serve a model base path over TensorFlow Serving's REST API: version 2,
// written while version 1 serves, replaces it without a restart.
func Example() {
	base, _ := os.MkdirTemp("", "pets")
	defer os.RemoveAll(base)
	saveVersion(base, 1)

	m, err := servables.New(servables.SingleModel("pets", base), servables.Options{Poll: 100 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	ts := httptest.NewServer(serving.NewHandler(m))
	defer ts.Close()
	fmt.Print(get(ts.URL + "/v1/models/pets"))

	saveVersion(base, 2)
	for {
		if _, v, release, err := m.Acquire(serving.ModelSpec{Name: "pets"}); err == nil {
			release()
			if v == 2 {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Version 1 is unloaded once no request holds it.
	for get(ts.URL+"/v1/models/pets/versions/1") != `{"model_version_status":[{"version":"1","state":"END","status":{"error_code":"OK","error_message":""}}]}`+"\n" {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Print(get(ts.URL + "/v1/models/pets"))
	// Output:
	// {"model_version_status":[{"version":"1","state":"AVAILABLE","status":{"error_code":"OK","error_message":""}}]}
	// {"model_version_status":[{"version":"1","state":"END","status":{"error_code":"OK","error_message":""}},{"version":"2","state":"AVAILABLE","status":{"error_code":"OK","error_message":""}}]}
}

// Several models from a text-format ModelServerConfig, TensorFlow Serving's
// --model_config_file, with a policy and labels.
func ExampleParseConfig() {
	base, _ := os.MkdirTemp("", "pets")
	defer os.RemoveAll(base)
	saveVersion(base, 1)
	saveVersion(base, 2)

	cfg, err := servables.ParseConfig([]byte(fmt.Sprintf(`
model_config_list {
  config {
    name: "pets"
    base_path: %q
    model_platform: "tensorflow"
    model_version_policy { all {} }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
}`, base)))
	if err != nil {
		log.Fatal(err)
	}
	m, err := servables.New(cfg, servables.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	for _, label := range []string{"stable", "canary"} {
		_, v, release, err := m.Acquire(serving.ModelSpec{Name: "pets", Label: label})
		if err != nil {
			log.Fatal(err)
		}
		release()
		fmt.Println(label, "is version", v)
	}
	// Output:
	// stable is version 1
	// canary is version 2
}
