package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The manifests checked, as scripts/check-manifests.sh checks them.
var manifests = []string{"../kubernetes.yaml", "../kserve.yaml", "../tfjob.yaml"}

func loadOptions(t *testing.T) Options {
	t.Helper()
	opts, err := LoadOptions("../../cmd/tfcat", "../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

func readManifests(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, m := range manifests {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		files[m] = b
	}
	return files
}

// TestManifests: deploy/*.yaml decode and pass every check, and each holds
// the objects it should.
func TestManifests(t *testing.T) {
	all, err := filepath.Glob("../*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(all)
	want := slices.Clone(manifests)
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Fatalf("deploy/*.yaml is %v; this test knows %v: add the new file to manifests", all, want)
	}
	objs, errs := Validate(loadOptions(t), manifests, readManifests(t))
	for _, e := range errs {
		t.Error(e)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.String())
	}
	for _, w := range []string{
		"../kubernetes.yaml: Deployment tfcat-pets",
		"../kubernetes.yaml: Service tfcat-pets",
		"../kserve.yaml: ServingRuntime tfcat",
		"../kserve.yaml: InferenceService pets",
		"../tfjob.yaml: TFJob tfcat-train",
	} {
		if !slices.Contains(got, w) {
			t.Errorf("no %s among %q", w, got)
		}
	}
}

type edit struct {
	old, new string
	n        int // times old occurs (and is replaced); 0 means 1
}

// TestBroken: a deliberate mistake in a manifest is found. Each case edits
// the real file (the old text must occur as often as said, so that a case
// does not silently stop applying when the manifest changes) and expects an
// error containing want.
func TestBroken(t *testing.T) {
	const k8s, ks, tj = "../kubernetes.yaml", "../kserve.yaml", "../tfjob.yaml"
	cases := []struct {
		name  string
		file  string
		edits []edit
		want  string
	}{
		// Decoding: what a schema finds.
		{"misspelt field", k8s, []edit{{"readinessProbe:", "readynessProbe:", 0}},
			`unknown field "spec.template.spec.containers[0].readynessProbe"`},
		{"field in the wrong case", k8s, []edit{{"targetPort: grpc", "targetport: grpc", 0}},
			`unknown field "spec.ports[1].targetport"`},
		{"duplicate field", k8s, []edit{{"  replicas: 2\n", "  replicas: 2\n  replicas: 3\n", 0}},
			`"replicas" already set`},
		{"wrong type", k8s, []edit{{"containerPort: 8501", "containerPort: http", 0}},
			"containerPort"},
		{"unknown kind", k8s, []edit{{"apiVersion: v1\nkind: Service", "apiVersion: v1\nkind: Services", 0}},
			`kind "Services": not a kind this validator knows`},
		{"unknown field of a custom resource", ks, []edit{{"  predictor:\n", "  transformer: {}\n  predictor:\n", 0}},
			`unknown field "spec.transformer"`},
		{"unknown field in a runtime's container", ks, []edit{{"      imagePullPolicy: IfNotPresent\n", "      imagePullPolicy: IfNotPresent\n      readOnlyRootFS: true\n", 0}},
			`unknown field "spec.containers[0].readOnlyRootFS"`},
		{"unknown field in a TFJob's pod", tj, []edit{{"restartPolicy: OnFailure\n      template:\n        spec:\n          containers:\n            - name: tensorflow\n              image: registry.example/tfcat:latest\n              args: &train",
			"restartPolicy: OnFailure\n      template:\n        spec:\n          containers:\n            - name: tensorflow\n              imag: registry.example/tfcat:latest\n              args: &train", 0}},
			`unknown field "spec.tfReplicaSpecs.PS.template.spec.containers[0].imag"`},

		// Deployment and Service: the API server's checks.
		{"selector misses the template", k8s, []edit{{"    matchLabels:\n      app.kubernetes.io/name: tfcat\n      app.kubernetes.io/instance: pets", "    matchLabels:\n      app.kubernetes.io/name: tfcat\n      app.kubernetes.io/instance: cats", 0}},
			"does not match the template's labels"},
		{"mount of no volume", k8s, []edit{{"        - name: models\n          persistentVolumeClaim:", "        - name: model\n          persistentVolumeClaim:", 0}},
			`"models" is no volume of the pod`},
		{"invalid port name", k8s, []edit{{"name: grpc\n              containerPort", "name: grpc_port\n              containerPort", 0}},
			`"grpc_port"`},
		{"request above limit", k8s, []edit{{"memory: 1Gi", "memory: 4Gi", 0}},
			"memory request 4Gi is above its limit 2Gi"},
		{"Service targets no port", k8s, []edit{{"targetPort: grpc", "targetPort: grpcs", 0}},
			"grpcs/TCP is no port of the selected containers"},
		{"Service exposes REST only", k8s, []edit{{"    - name: grpc\n      port: 8500\n      targetPort: grpc\n      protocol: TCP\n", "", 0}},
			"port grpc (8500) is not exposed"},
		{"Service selects nothing", k8s, []edit{{"  selector:\n    app.kubernetes.io/name: tfcat\n    app.kubernetes.io/instance: pets\n  ports:", "  selector:\n    app.kubernetes.io/name: tfcat\n    app.kubernetes.io/instance: cats\n  ports:", 0}},
			"selects no pod template"},

		// tfcat serve in a Deployment.
		{"REST on loopback", k8s, []edit{{"- 0.0.0.0:8501", "- 127.0.0.1:8501", 0}},
			"--addr 127.0.0.1:8501: listens on 127.0.0.1 only"},
		{"no --grpc-addr", k8s, []edit{{"            - --grpc-addr\n            - 0.0.0.0:8500\n", "", 0}},
			"no --grpc-addr"},
		{"gRPC on an undeclared port", k8s, []edit{{"- 0.0.0.0:8500", "- 0.0.0.0:8502", 0}},
			"port 8502 is no container port"},
		{"REST port misnamed", k8s, []edit{{"            - name: http\n              containerPort: 8501", "            - name: rest\n              containerPort: 8501", 0}},
			`container port 8501 is named "rest", want "http"`},
		{"port nothing listens on", k8s, []edit{{"              protocol: TCP\n          startupProbe:", "              protocol: TCP\n            - name: metrics\n              containerPort: 9090\n          startupProbe:", 0}},
			"metrics (9090): serve listens on no such port"},
		{"unknown flag", k8s, []edit{{"- --grpc-addr", "- --grpc_addr", 0}},
			"tfcat serve has no flag --grpc_addr"},
		{"flag without its value", k8s, []edit{{"            - --grpc-addr\n            - 0.0.0.0:8500\n", "            - --grpc-addr\n", 0}},
			"--grpc-addr needs a value"},
		{"entrypoint replaced", k8s, []edit{{"          imagePullPolicy: IfNotPresent\n", "          imagePullPolicy: IfNotPresent\n          command: [/bin/sh]\n", 0}},
			"replaces the image's entrypoint"},
		{"not serve", k8s, []edit{{"          args:\n            - serve\n", "          args:\n            - version\n", 0}},
			"tfcat version has no flag --model-base-path"},
		{"model on no volume", k8s, []edit{{"mountPath: /models", "mountPath: /data", 0}},
			"--model-base-path /models/pets is on no volume"},
		{"no model name", k8s, []edit{{"            - --model-name\n            - pets\n", "", 0}},
			"no --model-name"},
		{"readiness on the gRPC port", k8s, []edit{{"path: /v2/health/ready\n              port: http", "path: /v2/health/ready\n              port: grpc", 0}},
			"readinessProbe.httpGet.port: grpc is port 8500, not serve's REST port 8501"},
		{"readiness at no endpoint", k8s, []edit{{"path: /v2/health/ready", "path: /healthz", 0}},
			`"/healthz" is not one of serve's endpoints`},
		{"liveness asks readiness", k8s, []edit{{"path: /v2/health/live\n              port: http\n            periodSeconds: 10", "path: /v2/health/ready\n              port: http\n            periodSeconds: 10", 0}},
			`livenessProbe.httpGet.path: "/v2/health/ready"`},
		{"no liveness probe", k8s, []edit{{"          livenessProbe:\n            httpGet:\n              path: /v2/health/live\n              port: http\n            periodSeconds: 10\n            timeoutSeconds: 5\n            failureThreshold: 3\n", "", 0}},
			"livenessProbe: required"},
		{"probe over HTTPS", k8s, []edit{{"path: /v2/health/ready\n              port: http", "path: /v2/health/ready\n              port: http\n              scheme: HTTPS", 0}},
			"HTTPS: serve speaks plain HTTP"},
		{"root user", k8s, []edit{{"            runAsUser: 10001", "            runAsUser: 0", 0}},
			"runAsUser: 0, but the image's user is 10001"},
		{"another user", k8s, []edit{{"runAsUser: 10001", "runAsUser: 1000", 2}},
			"runAsUser: 1000, but the image's user is 10001"},
		{"no user", k8s, []edit{{"\n            runAsUser: 10001\n", "\n", 0}, {"\n        runAsUser: 10001\n", "\n", 0}},
			"runAsUser: not set"},
		{"privilege escalation", k8s, []edit{{"allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", 0}},
			"allowPrivilegeEscalation: not false"},
		{"no limits", k8s, []edit{{"            limits:\n              cpu: \"2\"\n              memory: 2Gi\n", "", 0}},
			"resources.limits: no cpu"},

		// KServe.
		{"runtime container misnamed", ks, []edit{{"- name: kserve-container", "- name: tfcat", 0}},
			"none is named kserve-container"},
		{"model name fixed", ks, []edit{{`- "{{.Name}}"`, "- pets", 0}},
			"--model-name must be KServe's {{.Name}}"},
		{"template misspelt", ks, []edit{{`"{{.Name}}"`, `"{{.Nmae}}"`, 0}},
			"can't evaluate field Nmae"},
		{"model not in /mnt/models", ks, []edit{{"- /mnt/models", "- /models", 0}},
			"KServe's storage initializer puts the model in /mnt/models"},
		{"REST not on 8080", ks, []edit{{"- 0.0.0.0:8080", "- 0.0.0.0:8090", 0}, {"containerPort: 8080", "containerPort: 8090", 0}},
			"--addr 0.0.0.0:8090: the port must be 8080 here"},
		{"gRPC port misnamed", ks, []edit{{"- name: h2c", "- name: grpc", 0}},
			`named "grpc", want "h2c"`},
		{"probe port by name", ks, []edit{{"path: /v2/health/ready\n          port: 8080", "path: /v2/health/ready\n          port: http1", 0}},
			"give the port's number"},
		{"unknown protocol", ks, []edit{{"    - grpc-v1\n", "    - grpc-v3\n", 0}},
			`"grpc-v3" is not one of`},
		{"protocol the runtime lacks", ks, []edit{{"    - v2\n", "", 0}},
			"no ServingRuntime in these files supports model format tfcat with protocol v2"},
		{"default protocol v1 the runtime lacks", ks, []edit{{"      protocolVersion: v2\n", "", 0}, {"    - v1\n", "", 0}},
			"with protocol v1"},
		{"format the runtime lacks", ks, []edit{{"        name: tfcat\n      runtime: tfcat", "        name: onnx\n      runtime: tfcat", 0}},
			"supports model format onnx"},
		{"format version the runtime lacks", ks, []edit{{"        name: tfcat\n      runtime: tfcat", "        name: tensorflow\n        version: \"1\"\n      runtime: tfcat", 0}},
			"supports model format tensorflow version 1"},
		{"no runtime named and no autoSelect", ks, []edit{{"      runtime: tfcat\n", "", 0}, {"autoSelect: true", "autoSelect: false", 0}},
			"supports model format tfcat"},
		{"runtime not in the files", ks, []edit{{"runtime: tfcat", "runtime: tfcat-v2", 0}},
			`"tfcat-v2" is no ServingRuntime`},
		{"two ports without RawDeployment", ks, []edit{{"    serving.kserve.io/deploymentMode: RawDeployment\n", "    serving.kserve.io/other: x\n", 0}},
			"only RawDeployment (Standard) mode serves"},
		{"unknown deployment mode", ks, []edit{{"deploymentMode: RawDeployment", "deploymentMode: Raw", 0}},
			`deploymentMode "Raw" is not one of`},
		{"storageUri without a scheme", ks, []edit{{"s3://YOUR-BUCKET/models/pets", "/models/pets", 0}},
			"not one of KServe's storage schemes"},
		{"no storageUri", ks, []edit{{"      storageUri: s3://YOUR-BUCKET/models/pets\n", "", 0}},
			"storageUri: required"},
		{"multi-model", ks, []edit{{"multiModel: false", "multiModel: true", 0}},
			"spec.multiModel: true"},
		{"InferenceService name", ks, []edit{{"  name: pets\n", "  name: Pets\n", 0}},
			`metadata.name: "Pets"`},
		{"runtime's user", ks, []edit{{"runAsUser: 10001", "runAsUser: 1000", 0}},
			"runAsUser: 1000, but the image's user is 10001"},
		{"replicas", ks, []edit{{"maxReplicas: 2", "maxReplicas: 1\n    minReplicas: 3", 0}, {"    minReplicas: 1\n", "", 0}},
			"minReplicas 3 is above maxReplicas 1"},

		// TFJob.
		{"replica type", tj, []edit{{"    Worker:", "    Workers:", 0}},
			`"Workers" is not one of`},
		{"train flag misspelt", tj, []edit{{`"--save-every"`, `"--save_every"`, 0}},
			"tfcat train has no flag --save_every"},
		{"training data on no volume", tj, []edit{{"mountPath: /data", "mountPath: /input", 0}},
			"--data /data/train is on no volume"},
		{"restart policy", tj, []edit{{"restartPolicy: OnFailure", "restartPolicy: OnFail", 2}},
			`"OnFail" is not one of Always`},
		{"container not named tensorflow", tj, []edit{{"- name: tensorflow", "- name: tf", 2}},
			"none is named tensorflow"},
	}
	opts := loadOptions(t)
	orig := readManifests(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string][]byte{}
			for k, v := range orig {
				files[k] = v
			}
			s := string(files[tc.file])
			for _, e := range tc.edits {
				n := e.n
				if n == 0 {
					n = 1
				}
				if got := strings.Count(s, e.old); got != n {
					t.Fatalf("%s holds %q %d times, not %d: update this case", tc.file, e.old, got, n)
				}
				s = strings.ReplaceAll(s, e.old, e.new)
			}
			files[tc.file] = []byte(s)
			_, errs := Validate(opts, manifests, files)
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Error())
			}
			if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, tc.want) }) {
				t.Errorf("no error contains %q; errors:\n%s", tc.want, strings.Join(msgs, "\n"))
			}
		})
	}
}

// TestValidVariants: changes that are right pass (the checks are not tied to
// one spelling of the manifests).
func TestValidVariants(t *testing.T) {
	const k8s, ks = "../kubernetes.yaml", "../kserve.yaml"
	cases := []struct {
		name  string
		file  string
		edits []edit
	}{
		{"flags with =", k8s, []edit{{"            - --addr\n            - 0.0.0.0:8501\n", "            - --addr=0.0.0.0:8501\n", 0}}},
		{"single dash and the --name spelling", k8s, []edit{{"            - --model-name\n", "            - -name\n", 0}}},
		{"emptyDir for the models", k8s, []edit{{"          persistentVolumeClaim:\n            claimName: tfcat-models\n            readOnly: true\n", "          emptyDir: {}\n", 0}}},
		{"ports by number", k8s, []edit{{"targetPort: grpc", "targetPort: 8500", 0}, {"port: http\n", "port: 8501\n", 3}}},
		{"one SavedModel in /mnt/models", ks, []edit{{"        - --model-base-path\n", "        - --model\n", 0}, {"        - --poll\n        - \"0\"\n", "", 0}}},
		{"KServe 0.16's mode name", ks, []edit{{"deploymentMode: RawDeployment", "deploymentMode: Standard", 0}}},
		{"v1 protocol", ks, []edit{{"protocolVersion: v2", "protocolVersion: v1", 0}}},
		{"readiness by TensorFlow Serving's model status", k8s, []edit{{"path: /v2/health/ready", "path: /v1/models/pets", 0}}},
		{"autoSelect", ks, []edit{{"      runtime: tfcat\n", "", 0}}},
		{"image from a registry with a digest", k8s, []edit{{"image: tfcat:latest", "image: registry.example:5000/ml/tfcat@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 0}}},
	}
	opts := loadOptions(t)
	orig := readManifests(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string][]byte{}
			for k, v := range orig {
				files[k] = v
			}
			s := string(files[tc.file])
			for _, e := range tc.edits {
				n := e.n
				if n == 0 {
					n = 1
				}
				if got := strings.Count(s, e.old); got != n {
					t.Fatalf("%s holds %q %d times, not %d: update this case", tc.file, e.old, got, n)
				}
				s = strings.ReplaceAll(s, e.old, e.new)
			}
			files[tc.file] = []byte(s)
			if _, errs := Validate(opts, manifests, files); len(errs) > 0 {
				for _, e := range errs {
					t.Error(e)
				}
			}
		})
	}
}

// TestCommands: serve's and train's flags are read from cmd/tfcat's source.
func TestCommands(t *testing.T) {
	cmds := loadOptions(t).Commands
	serve := cmds["serve"]
	for _, f := range []string{"model", "m", "model-base-path", "model-config-file", "poll", "addr", "grpc-addr", "name", "model-name", "threads", "quiet", "help"} {
		if serve[f] == nil {
			t.Errorf("serve has no flag --%s", f)
		}
	}
	if serve["model-name"] != serve["name"] {
		t.Error("--model-name is not --name's alias")
	}
	if !serve["quiet"].Bool || serve["addr"].Bool {
		t.Error("--quiet should be a bool flag and --addr not")
	}
	if cmds["train"]["data"] == nil || !cmds["train"]["resume-if-present"].Bool {
		t.Error("train's flags not read")
	}

	a, err := ParseArgs(cmds, []string{"serve", "--quiet", "-addr=:1", "--model-name", "x", "--trust-graph=false"})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := a.Get("addr"); v != ":1" {
		t.Errorf("addr %q", v)
	}
	if v, _ := a.Get("name"); v != "x" {
		t.Errorf("name %q (an alias's value is under the flag's name)", v)
	}
	if v, _ := a.Get("quiet"); v != "true" {
		t.Errorf("quiet %q", v)
	}
	for _, bad := range [][]string{
		{"serve", "--quiet=maybe"},
		{"serve", "--addr"},
		{"serve", "extra"},
		{"serve", "--no-such-flag"},
		{"servе"},
		{},
	} {
		if _, err := ParseArgs(cmds, bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}

	// A style of cmd/tfcat the reader does not follow is an error, not a
	// partial list of flags.
	dir := t.TempDir()
	src := `package main

import "github.com/urfave/cli/v2"

func serveCommand() *cli.Command {
	return &cli.Command{Name: "serve", Flags: makeFlags()}
}

func makeFlags() []cli.Flag {
	var fs []cli.Flag
	for _, n := range []string{"a", "b"} {
		fs = append(fs, &cli.StringFlag{Name: n})
	}
	return fs
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCommands(dir); err == nil || !strings.Contains(err.Error(), "cannot read this list of flags") {
		t.Errorf("LoadCommands of an unreadable flag list: %v", err)
	}
}

// TestImageUser: the Dockerfile's final USER, numeric and not root.
func TestImageUser(t *testing.T) {
	u, err := ReadImageUser("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if u.UID != 10001 || !u.HasGID || u.GID != 10001 {
		t.Errorf("image user %+v, want 10001:10001", u)
	}
	dir := t.TempDir()
	for df, want := range map[string]string{
		"FROM a\nUSER 10001\nFROM b\n": "",
		"FROM a\nUSER 5:6\n":           "",
		"FROM a\n":                     "no USER",
		"FROM a\nUSER tfcat\n":         "not a numeric uid",
		"FROM a\nUSER 10001\nUSER 0\n": "is root",
		"FROM a\nUSER 10001:tfcat\n":   "not a numeric gid",
	} {
		p := filepath.Join(dir, "Dockerfile")
		if err := os.WriteFile(p, []byte(df), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadImageUser(p)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", df, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: error %v, want %q", df, err, want)
		}
	}
}
