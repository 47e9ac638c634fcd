// Command validate checks tfcat's Kubernetes manifests (deploy/*.yaml) as
// `kubectl apply --dry-run=client --validate=strict` would with the API
// server's schemas at hand, without a cluster or a download: each document is
// decoded strictly into its Go API type (k8s.io/api's Deployment and Service;
// for KServe's ServingRuntime and InferenceService and Kubeflow's TFJob, the
// types in types.go), so that an unknown or misspelt field, a duplicate field
// or a value of the wrong type is an error. Then it makes the checks a schema
// cannot express (checks.go): names, selectors and port references as the API
// server checks them, KServe's choice of runtime, and tfcat's own: the
// container's args are flags of the tfcat command (read from cmd/tfcat's
// source), serve listens on all interfaces on the ports the container and
// Service declare, the probes ask serve's health endpoints on its REST port,
// the model is on a volume, and the user is the Dockerfile's.
//
//	go run . -cmd ../../cmd/tfcat -dockerfile ../../Dockerfile ../*.yaml
//
// It prints one line per object checked and each error, and exits 1 if any.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	cmdDir := flag.String("cmd", "cmd/tfcat", "tfcat's cmd/tfcat source folder (its commands' flags)")
	dockerfile := flag.String("dockerfile", "Dockerfile", "the image's Dockerfile (its USER)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: validate [-cmd DIR] [-dockerfile FILE] MANIFEST.yaml...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	opts, err := LoadOptions(*cmdDir, *dockerfile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "validate:", err)
		os.Exit(1)
	}
	files := map[string][]byte{}
	var names []string
	for _, f := range flag.Args() {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "validate:", err)
			os.Exit(1)
		}
		files[f] = b
		names = append(names, f)
	}
	objs, errs := Validate(opts, names, files)
	for _, o := range objs {
		fmt.Println("checked", o)
	}
	for _, e := range errs {
		fmt.Fprintln(os.Stderr, "error:", e)
	}
	if len(errs) > 0 {
		fmt.Fprintf(os.Stderr, "validate: %d error(s) in %d object(s)\n", len(errs), len(objs))
		os.Exit(1)
	}
	fmt.Printf("validate: %d objects in %d files: ok\n", len(objs), len(names))
}

// LoadOptions reads tfcat's commands from cmdDir and the image's user from
// the Dockerfile.
func LoadOptions(cmdDir, dockerfile string) (Options, error) {
	cmds, err := LoadCommands(cmdDir)
	if err != nil {
		return Options{}, err
	}
	for _, c := range []string{"serve", "train"} {
		if cmds[c] == nil {
			return Options{}, fmt.Errorf("%s: no tfcat %s command found", cmdDir, c)
		}
	}
	u, err := ReadImageUser(dockerfile)
	if err != nil {
		return Options{}, err
	}
	return Options{Commands: cmds, User: u}, nil
}

// Validate decodes and checks the named files together (a Service is checked
// against the Deployments, an InferenceService against the ServingRuntimes of
// all of them).
func Validate(opts Options, names []string, files map[string][]byte) ([]*Object, []error) {
	var objs []*Object
	var errs []error
	for _, n := range names {
		o, e := Decode(n, files[n])
		objs = append(objs, o...)
		errs = append(errs, e...)
	}
	return objs, append(errs, Check(opts, objs)...)
}
