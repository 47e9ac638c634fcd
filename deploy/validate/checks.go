package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ImageUser is the user the image runs as (the Dockerfile's last USER).
type ImageUser struct {
	UID, GID int64
	HasGID   bool
}

// ReadImageUser reads the final USER of a Dockerfile. Kubernetes can check
// runAsNonRoot only for a numeric user, so a name is an error.
func ReadImageUser(dockerfile string) (ImageUser, error) {
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		return ImageUser{}, err
	}
	var last string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.EqualFold(f[0], "USER") {
			last = f[1]
		}
	}
	if last == "" {
		return ImageUser{}, fmt.Errorf("%s: no USER: the image would run as root", dockerfile)
	}
	uid, gid, hasGID := strings.Cut(last, ":")
	var u ImageUser
	if u.UID, err = strconv.ParseInt(uid, 10, 64); err != nil {
		return u, fmt.Errorf("%s: USER %s: not a numeric uid (Kubernetes checks runAsNonRoot only for numeric users)", dockerfile, last)
	}
	if hasGID {
		if u.GID, err = strconv.ParseInt(gid, 10, 64); err != nil {
			return u, fmt.Errorf("%s: USER %s: not a numeric gid", dockerfile, last)
		}
		u.HasGID = true
	}
	if u.UID == 0 {
		return u, fmt.Errorf("%s: USER %s is root", dockerfile, last)
	}
	return u, nil
}

// Options are what the checks compare the manifests with.
type Options struct {
	Commands map[string]Command // tfcat's commands and flags (LoadCommands)
	User     ImageUser          // the image's user (ReadImageUser)
}

// KServe's conventions for a custom runtime.
const (
	kserveContainer = "kserve-container"
	kserveModelDir  = "/mnt/models" // where the storage initializer puts the model
	kserveHTTPName  = "http1"
	kserveHTTPPort  = 8080
	kserveGRPCName  = "h2c"
	kserveGRPCPort  = 8081
	// sampleName stands for an InferenceService's name when a runtime's
	// args are rendered as KServe renders them.
	sampleName = "sample-isvc"
)

var (
	kserveProtocols   = []string{"v1", "v2", "grpc-v1", "grpc-v2"}
	kserveModes       = []string{"RawDeployment", "Standard", "Serverless", "Knative", "ModelMesh"}
	kserveRawModes    = []string{"RawDeployment", "Standard"}
	storageSchemes    = []string{"gs://", "s3://", "pvc://", "file://", "https://", "http://", "hdfs://", "webhdfs://", "oci://", "hf://"}
	tfReplicaTypes    = []string{"PS", "Worker", "Chief", "Master", "Evaluator"}
	tfRestartPolicies = []string{"Always", "OnFailure", "Never", "ExitCode"}
	tfCleanPodPolicy  = []string{"All", "Running", "None"}
	modelFormatVer    = regexp.MustCompile(`^[0-9]+(\.[0-9]+){0,2}$`)
)

// serveWant is what a `tfcat serve` container must look like where it runs.
type serveWant struct {
	httpName, grpcName string
	httpPort, grpcPort int32  // 0: any
	modelDir           string // "": on one of the container's volumes
	nameFromTemplate   bool   // --model-name is KServe's {{.Name}}
	probePortNumbers   bool   // probes give the port as a number (Knative)
}

var (
	deploymentServe = serveWant{httpName: "http", grpcName: "grpc"}
	kserveServe     = serveWant{httpName: kserveHTTPName, grpcName: kserveGRPCName, httpPort: kserveHTTPPort,
		grpcPort: kserveGRPCPort, modelDir: kserveModelDir, nameFromTemplate: true, probePortNumbers: true}
)

type checker struct {
	opts Options
	objs []*Object
	errs []error
}

// Check runs the checks a schema cannot express on decoded objects: those
// Kubernetes' API server would make on create (names, label selectors,
// port names, references between fields), those of KServe's and the
// training operator's controllers that a manifest can break (the runtime
// container's name, an InferenceService's runtime, model format and
// protocol), and tfcat's own (the args are flags of the command, the ports
// are the ones serve listens on, reachable from outside the container, the
// probes ask serve's health endpoints on its REST port, the model is on a
// volume, the user is the image's).
func Check(opts Options, objs []*Object) []error {
	c := &checker{opts: opts, objs: objs}
	seen := map[string]*Object{}
	for _, o := range objs {
		k := o.Kind + "/" + o.Name
		if prev := seen[k]; prev != nil {
			c.errorf(o, "", "%s %s is also defined in %s", o.Kind, o.Name, prev.File)
		}
		seen[k] = o
	}
	for _, o := range objs {
		switch obj := o.Obj.(type) {
		case *appsv1.Deployment:
			c.deployment(o, obj)
		case *corev1.Service:
			c.service(o, obj)
		case *ServingRuntime:
			c.servingRuntime(o, obj)
		case *InferenceService:
			c.inferenceService(o, obj)
		case *TFJob:
			c.tfJob(o, obj)
		}
	}
	return c.errs
}

func (c *checker) errorf(o *Object, at string, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if at != "" {
		msg = at + ": " + msg
	}
	c.errs = append(c.errs, fmt.Errorf("%s: %s", o, msg))
}

func (c *checker) fieldErrors(o *Object, errs field.ErrorList) {
	for _, e := range errs {
		c.errorf(o, "", "%s", e.Error())
	}
}

func (c *checker) meta(o *Object, m *metav1.ObjectMeta, nameCheck func(string) []string) {
	if m.Name == "" {
		c.errorf(o, "metadata.name", "required")
	} else {
		for _, e := range nameCheck(m.Name) {
			c.errorf(o, "metadata.name", "%q: %s", m.Name, e)
		}
	}
	c.fieldErrors(o, metav1validation.ValidateLabels(m.Labels, field.NewPath("metadata", "labels")))
}

// ---- Deployment and Service ----

func (c *checker) deployment(o *Object, d *appsv1.Deployment) {
	c.meta(o, &d.ObjectMeta, validation.IsDNS1123Subdomain)
	if d.Spec.Replicas != nil && *d.Spec.Replicas < 0 {
		c.errorf(o, "spec.replicas", "negative")
	}
	tmpl := field.NewPath("spec", "template")
	c.fieldErrors(o, metav1validation.ValidateLabels(d.Spec.Template.Labels, tmpl.Child("metadata", "labels")))
	if d.Spec.Selector == nil {
		c.errorf(o, "spec.selector", "required")
	} else {
		c.fieldErrors(o, metav1validation.ValidateLabelSelector(d.Spec.Selector, metav1validation.LabelSelectorValidationOptions{}, field.NewPath("spec", "selector")))
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		switch {
		case err != nil:
			c.errorf(o, "spec.selector", "%v", err)
		case sel.Empty():
			c.errorf(o, "spec.selector", "empty: it would select every pod")
		case !sel.Matches(labels.Set(d.Spec.Template.Labels)):
			c.errorf(o, "spec.selector", "%s does not match the template's labels %v", sel, d.Spec.Template.Labels)
		}
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil && ru.MaxSurge != nil && ru.MaxUnavailable != nil &&
		ru.MaxSurge.String() == "0" && ru.MaxUnavailable.String() == "0" {
		c.errorf(o, "spec.strategy.rollingUpdate", "maxSurge and maxUnavailable may not both be 0")
	}
	if p := d.Spec.Template.Spec.RestartPolicy; p != "" && p != corev1.RestartPolicyAlways {
		c.errorf(o, "spec.template.spec.restartPolicy", "%s: a Deployment's pods must be Always", p)
	}
	c.pod(o, "spec.template.spec", &d.Spec.Template.Spec, deploymentServe, true)
}

func (c *checker) service(o *Object, s *corev1.Service) {
	c.meta(o, &s.ObjectMeta, validation.IsDNS1035Label)
	if len(s.Spec.Selector) == 0 {
		c.errorf(o, "spec.selector", "empty: the Service would have no endpoints")
		return
	}
	for k, v := range s.Spec.Selector {
		for _, e := range validation.IsQualifiedName(k) {
			c.errorf(o, "spec.selector", "%q: %s", k, e)
		}
		for _, e := range validation.IsValidLabelValue(v) {
			c.errorf(o, "spec.selector", "%q: %s", v, e)
		}
	}
	sel := labels.SelectorFromSet(s.Spec.Selector)
	var pods []*corev1.PodSpec
	for _, other := range c.objs {
		if d, ok := other.Obj.(*appsv1.Deployment); ok && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			pods = append(pods, &d.Spec.Template.Spec)
		}
	}
	if len(pods) == 0 {
		c.errorf(o, "spec.selector", "%s selects no pod template in these files", sel)
		return
	}
	if len(s.Spec.Ports) == 0 {
		c.errorf(o, "spec.ports", "required")
	}
	names, numbers := map[string]bool{}, map[string]bool{}
	exposed := map[int32]bool{} // container ports reached
	for i, p := range s.Spec.Ports {
		at := fmt.Sprintf("spec.ports[%d]", i)
		if p.Name == "" && len(s.Spec.Ports) > 1 {
			c.errorf(o, at+".name", "required when a Service has several ports")
		} else if p.Name != "" {
			for _, e := range validation.IsDNS1123Label(p.Name) {
				c.errorf(o, at+".name", "%q: %s", p.Name, e)
			}
			if names[p.Name] {
				c.errorf(o, at+".name", "%q used twice", p.Name)
			}
			names[p.Name] = true
		}
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		if k := fmt.Sprint(proto, p.Port); numbers[k] {
			c.errorf(o, at+".port", "%d/%s used twice", p.Port, proto)
		} else {
			numbers[k] = true
		}
		if p.Port < 1 || p.Port > 65535 {
			c.errorf(o, at+".port", "%d is out of range", p.Port)
		}
		target := p.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(p.Port)
		}
		found := false
		for _, pod := range pods {
			for _, ctr := range pod.Containers {
				for _, cp := range ctr.Ports {
					cproto := cp.Protocol
					if cproto == "" {
						cproto = corev1.ProtocolTCP
					}
					if cproto != proto {
						continue
					}
					if (target.Type == intstr.String && cp.Name == target.StrVal) ||
						(target.Type == intstr.Int && cp.ContainerPort == target.IntVal) {
						found = true
						exposed[cp.ContainerPort] = true
					}
				}
			}
		}
		if !found {
			c.errorf(o, at+".targetPort", "%s/%s is no port of the selected containers", target.String(), proto)
		}
	}
	for _, pod := range pods {
		for _, ctr := range pod.Containers {
			if !isTfcatImage(ctr.Image) {
				continue
			}
			for _, cp := range ctr.Ports {
				if !exposed[cp.ContainerPort] {
					c.errorf(o, "spec.ports", "container %s's port %s (%d) is not exposed", ctr.Name, cp.Name, cp.ContainerPort)
				}
			}
		}
	}
}

// ---- pods and containers ----

// pod checks a pod's volumes and containers; serveRequired says that a tfcat
// container here must run serve (a Deployment) rather than any command.
func (c *checker) pod(o *Object, at string, p *corev1.PodSpec, want serveWant, serveRequired bool) {
	vols := map[string]bool{}
	for i, v := range p.Volumes {
		for _, e := range validation.IsDNS1123Label(v.Name) {
			c.errorf(o, fmt.Sprintf("%s.volumes[%d].name", at, i), "%q: %s", v.Name, e)
		}
		if vols[v.Name] {
			c.errorf(o, fmt.Sprintf("%s.volumes[%d].name", at, i), "%q used twice", v.Name)
		}
		vols[v.Name] = true
	}
	if len(p.Containers) == 0 {
		c.errorf(o, at+".containers", "required")
	}
	names := map[string]bool{}
	for i := range p.Containers {
		ctr := &p.Containers[i]
		cat := fmt.Sprintf("%s.containers[%d]", at, i)
		if names[ctr.Name] {
			c.errorf(o, cat+".name", "%q used twice", ctr.Name)
		}
		names[ctr.Name] = true
		c.container(o, cat, ctr, vols, true)
		if isTfcatImage(ctr.Image) {
			c.tfcat(o, cat, ctr, p.SecurityContext, want, serveRequired)
		}
	}
}

// container checks what Kubernetes checks of any container; volumes are the
// pod's volume names (nil: the pod's volumes are not known here).
func (c *checker) container(o *Object, at string, ctr *corev1.Container, vols map[string]bool, needName bool) {
	if ctr.Name == "" {
		if needName {
			c.errorf(o, at+".name", "required")
		}
	} else {
		for _, e := range validation.IsDNS1123Label(ctr.Name) {
			c.errorf(o, at+".name", "%q: %s", ctr.Name, e)
		}
	}
	if needName && strings.TrimSpace(ctr.Image) == "" {
		c.errorf(o, at+".image", "required")
	}
	portNames, portNumbers := map[string]bool{}, map[string]bool{}
	for i, p := range ctr.Ports {
		pat := fmt.Sprintf("%s.ports[%d]", at, i)
		if p.Name != "" {
			for _, e := range validation.IsValidPortName(p.Name) {
				c.errorf(o, pat+".name", "%q: %s", p.Name, e)
			}
			if portNames[p.Name] {
				c.errorf(o, pat+".name", "%q used twice", p.Name)
			}
			portNames[p.Name] = true
		}
		for _, e := range validation.IsValidPortNum(int(p.ContainerPort)) {
			c.errorf(o, pat+".containerPort", "%d: %s", p.ContainerPort, e)
		}
		if k := fmt.Sprint(p.Protocol, p.ContainerPort); portNumbers[k] {
			c.errorf(o, pat+".containerPort", "%d used twice", p.ContainerPort)
		} else {
			portNumbers[k] = true
		}
	}
	for _, pr := range probes(ctr) {
		c.probeHandler(o, at+"."+pr.field, ctr, pr.probe)
	}
	for name, lim := range ctr.Resources.Limits {
		if req, ok := ctr.Resources.Requests[name]; ok && req.Cmp(lim) > 0 {
			c.errorf(o, at+".resources", "%s request %s is above its limit %s", name, req.String(), lim.String())
		}
	}
	mounts := map[string]bool{}
	for i, m := range ctr.VolumeMounts {
		mat := fmt.Sprintf("%s.volumeMounts[%d]", at, i)
		if vols != nil && !vols[m.Name] {
			c.errorf(o, mat+".name", "%q is no volume of the pod", m.Name)
		}
		if !path.IsAbs(m.MountPath) {
			c.errorf(o, mat+".mountPath", "%q is not absolute", m.MountPath)
		}
		if mounts[m.MountPath] {
			c.errorf(o, mat+".mountPath", "%q mounted twice", m.MountPath)
		}
		mounts[m.MountPath] = true
	}
}

type namedProbe struct {
	field string
	probe *corev1.Probe
}

func probes(ctr *corev1.Container) []namedProbe {
	var out []namedProbe
	for _, p := range []namedProbe{{"startupProbe", ctr.StartupProbe}, {"readinessProbe", ctr.ReadinessProbe}, {"livenessProbe", ctr.LivenessProbe}} {
		if p.probe != nil {
			out = append(out, p)
		}
	}
	return out
}

func (c *checker) probeHandler(o *Object, at string, ctr *corev1.Container, p *corev1.Probe) {
	n := 0
	if p.Exec != nil {
		n++
	}
	if p.HTTPGet != nil {
		n++
		if _, ok := containerPort(ctr, p.HTTPGet.Port); !ok {
			c.errorf(o, at+".httpGet.port", "%s is no port of the container", p.HTTPGet.Port.String())
		}
	}
	if p.TCPSocket != nil {
		n++
		if _, ok := containerPort(ctr, p.TCPSocket.Port); !ok {
			c.errorf(o, at+".tcpSocket.port", "%s is no port of the container", p.TCPSocket.Port.String())
		}
	}
	if p.GRPC != nil {
		n++
	}
	if n != 1 {
		c.errorf(o, at, "needs exactly one handler (exec, httpGet, tcpSocket or grpc), has %d", n)
	}
	if p.FailureThreshold < 0 || p.PeriodSeconds < 0 || p.TimeoutSeconds < 0 || p.InitialDelaySeconds < 0 {
		c.errorf(o, at, "negative timing")
	}
}

// containerPort resolves a probe's or a Service's port (a name or a number)
// among the container's ports.
func containerPort(ctr *corev1.Container, p intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, cp := range ctr.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

// isTfcatImage reports whether an image reference names tfcat's image: its
// last path element, less tag and digest, is tfcat.
func isTfcatImage(image string) bool {
	image, _, _ = strings.Cut(image, "@")
	if i := strings.LastIndexByte(image, ':'); i > strings.LastIndexByte(image, '/') {
		image = image[:i]
	}
	return path.Base(image) == "tfcat"
}

// tfcat checks a container running tfcat's image.
func (c *checker) tfcat(o *Object, at string, ctr *corev1.Container, podSec *corev1.PodSecurityContext, want serveWant, serveRequired bool) {
	if len(ctr.Command) > 0 && !slices.Equal(ctr.Command, []string{"tfcat"}) {
		c.errorf(o, at+".command", "%q replaces the image's entrypoint tfcat: give the tfcat command in args", ctr.Command)
	}
	c.security(o, at, ctr, podSec, serveRequired)
	args := ctr.Args
	if want.nameFromTemplate {
		var err error
		if args, err = renderArgs(args); err != nil {
			c.errorf(o, at+".args", "%v", err)
			return
		}
	}
	a, err := ParseArgs(c.opts.Commands, args)
	if err != nil {
		c.errorf(o, at+".args", "%v", err)
		return
	}
	switch {
	case a.Command == "serve":
		c.serve(o, at, ctr, a, want)
	case serveRequired:
		c.errorf(o, at+".args", "runs tfcat %s, not serve", a.Command)
	case a.Command == "train":
		for _, f := range []string{"data", "model-dir"} {
			if v, ok := a.Get(f); ok && !onVolume(ctr, v) {
				c.errorf(o, at+".args", "--%s %s is on no volume of the container", f, v)
			}
		}
	}
}

// renderArgs renders a ServingRuntime's args as KServe does, as Go templates
// of the InferenceService's metadata.
func renderArgs(args []string) ([]string, error) {
	meta := metav1.ObjectMeta{Name: sampleName, Namespace: "default"}
	out := make([]string, len(args))
	for i, a := range args {
		t, err := template.New("arg").Option("missingkey=error").Parse(a)
		if err != nil {
			return nil, fmt.Errorf("arg %q: %v", a, err)
		}
		var b bytes.Buffer
		if err := t.Execute(&b, meta); err != nil {
			return nil, fmt.Errorf("arg %q: %v", a, err)
		}
		out[i] = b.String()
	}
	return out, nil
}

func onVolume(ctr *corev1.Container, p string) bool {
	p = path.Clean(p)
	for _, m := range ctr.VolumeMounts {
		mp := path.Clean(m.MountPath)
		if p == mp || strings.HasPrefix(p, mp+"/") {
			return true
		}
	}
	return false
}

// security checks the container runs as the image's non-root user. Where
// required is false (a TFJob, which relies on the image's USER), only what is
// set must agree with the image.
func (c *checker) security(o *Object, at string, ctr *corev1.Container, podSec *corev1.PodSecurityContext, required bool) {
	var uid, gid *int64
	var nonRoot *bool
	if podSec != nil {
		uid, gid, nonRoot = podSec.RunAsUser, podSec.RunAsGroup, podSec.RunAsNonRoot
	}
	sc := ctr.SecurityContext
	if sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			nonRoot = sc.RunAsNonRoot
		}
		if sc.Privileged != nil && *sc.Privileged {
			c.errorf(o, at+".securityContext.privileged", "tfcat needs no privileges")
		}
	}
	u := c.opts.User
	switch {
	case uid != nil && *uid != u.UID:
		c.errorf(o, at+".securityContext.runAsUser", "%d, but the image's user is %d (Dockerfile USER)", *uid, u.UID)
	case uid == nil && required:
		c.errorf(o, at+".securityContext.runAsUser", "not set: give the image's user %d", u.UID)
	}
	if gid != nil && u.HasGID && *gid != u.GID {
		c.errorf(o, at+".securityContext.runAsGroup", "%d, but the image's group is %d (Dockerfile USER)", *gid, u.GID)
	}
	if nonRoot != nil && !*nonRoot {
		c.errorf(o, at+".securityContext.runAsNonRoot", "false: the image runs as %d", u.UID)
	} else if nonRoot == nil && required {
		c.errorf(o, at+".securityContext.runAsNonRoot", "not set: set it true")
	}
	if required && (sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation) {
		c.errorf(o, at+".securityContext.allowPrivilegeEscalation", "not false: set it false")
	}
}

// serve checks a `tfcat serve` container against where it runs.
func (c *checker) serve(o *Object, at string, ctr *corev1.Container, a Args, want serveWant) {
	aat := at + ".args"
	var source, modelPath string
	for _, f := range []string{"model", "model-base-path", "model-config-file"} {
		if v, ok := a.Get(f); ok {
			if source != "" {
				c.errorf(o, aat, "--%s and --%s: give one", source, f)
			}
			source, modelPath = f, v
		}
	}
	switch {
	case source == "":
		c.errorf(o, aat, "no --model, --model-base-path or --model-config-file: serve would look in its working folder")
	case want.modelDir != "":
		if source == "model-config-file" {
			c.errorf(o, aat, "--model-config-file: KServe puts one model in %s; use --model-base-path or --model", want.modelDir)
		} else if path.Clean(modelPath) != want.modelDir {
			c.errorf(o, aat, "--%s %s: KServe's storage initializer puts the model in %s", source, modelPath, want.modelDir)
		}
	case !onVolume(ctr, modelPath):
		c.errorf(o, aat, "--%s %s is on no volume of the container: the image holds no models", source, modelPath)
	}
	name, hasName := a.Get("name")
	switch {
	case want.nameFromTemplate && name != sampleName:
		c.errorf(o, aat, "--model-name must be KServe's {{.Name}} (the InferenceService's name), so that /v2/models/NAME is the service's")
	case !want.nameFromTemplate && !hasName && source != "model-config-file":
		c.errorf(o, aat, "no --model-name: the model would be served as \"default\"")
	}

	httpPort := c.listen(o, aat, ctr, a, "addr", want.httpName, want.httpPort)
	grpcPort := c.listen(o, aat, ctr, a, "grpc-addr", want.grpcName, want.grpcPort)
	for i, cp := range ctr.Ports {
		if cp.ContainerPort != httpPort && cp.ContainerPort != grpcPort {
			c.errorf(o, fmt.Sprintf("%s.ports[%d]", at, i), "%s (%d): serve listens on no such port", cp.Name, cp.ContainerPort)
		}
	}

	// The probes: serve's health endpoints, on its REST port, over HTTP.
	live := []string{"/v2/health/live"}
	ready := []string{"/v2/health/ready", "/v2/models/" + name + "/ready", "/v1/models/" + name}
	for _, pr := range []struct {
		field    string
		probe    *corev1.Probe
		paths    []string
		required bool
	}{
		{"readinessProbe", ctr.ReadinessProbe, ready, true},
		{"livenessProbe", ctr.LivenessProbe, live, true},
		{"startupProbe", ctr.StartupProbe, live, false},
	} {
		pat := at + "." + pr.field
		if pr.probe == nil {
			if pr.required {
				c.errorf(o, pat, "required")
			}
			continue
		}
		g := pr.probe.HTTPGet
		if g == nil {
			c.errorf(o, pat, "must be an httpGet on serve's REST port")
			continue
		}
		if g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
			c.errorf(o, pat+".httpGet.scheme", "%s: serve speaks plain HTTP", g.Scheme)
		}
		if cp, ok := containerPort(ctr, g.Port); ok && cp.ContainerPort != httpPort {
			c.errorf(o, pat+".httpGet.port", "%s is port %d, not serve's REST port %d (--addr)", g.Port.String(), cp.ContainerPort, httpPort)
		}
		if want.probePortNumbers && g.Port.Type == intstr.String {
			c.errorf(o, pat+".httpGet.port", "%q: give the port's number (Knative accepts only the container port's number here)", g.Port.StrVal)
		}
		if !slices.Contains(pr.paths, g.Path) {
			c.errorf(o, pat+".httpGet.path", "%q is not one of serve's endpoints for it: %s", g.Path, strings.Join(pr.paths, ", "))
		}
	}

	// Resources: a model server without requests is scheduled anywhere, one
	// without limits can take the node's memory.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		for _, l := range []struct {
			what string
			list corev1.ResourceList
		}{{"requests", ctr.Resources.Requests}, {"limits", ctr.Resources.Limits}} {
			if q, ok := l.list[r]; !ok || q.Cmp(resource.Quantity{}) <= 0 {
				c.errorf(o, at+".resources."+l.what, "no %s", r)
			}
		}
	}
}

// listen checks the address serve's flag gives: all interfaces (loopback is
// unreachable from outside the container), and a port the container declares
// under the expected name (and number). It returns the port.
func (c *checker) listen(o *Object, at string, ctr *corev1.Container, a Args, flag, portName string, portNumber int32) int32 {
	addr, ok := a.Get(flag)
	if !ok {
		c.errorf(o, at, "no --%s: serve's default is on loopback, unreachable from outside the container", flag)
		return -1
	}
	if addr == "" {
		c.errorf(o, at, "--%s is empty: that API is off", flag)
		return -1
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		c.errorf(o, at, "--%s %s: %v", flag, addr, err)
		return -1
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		c.errorf(o, at, "--%s %s: listens on %s only; inside a container use 0.0.0.0", flag, addr, host)
	}
	port, err := strconv.ParseInt(portStr, 10, 32)
	if err != nil || port < 1 || port > 65535 {
		c.errorf(o, at, "--%s %s: port is not a number from 1 to 65535", flag, addr)
		return -1
	}
	p := int32(port)
	if portNumber != 0 && p != portNumber {
		c.errorf(o, at, "--%s %s: the port must be %d here", flag, addr, portNumber)
	}
	cp, found := containerPort(ctr, intstr.FromInt32(p))
	switch {
	case !found:
		c.errorf(o, at, "--%s %s: port %d is no container port (want one named %s)", flag, addr, p, portName)
	case cp.Name != portName:
		c.errorf(o, at, "--%s %s: container port %d is named %q, want %q", flag, addr, p, cp.Name, portName)
	case cp.Protocol != "" && cp.Protocol != corev1.ProtocolTCP:
		c.errorf(o, at, "--%s %s: container port %d is %s, not TCP", flag, addr, p, cp.Protocol)
	}
	return p
}

// ---- KServe ----

func (c *checker) servingRuntime(o *Object, sr *ServingRuntime) {
	c.meta(o, &sr.ObjectMeta, validation.IsDNS1123Subdomain)
	s := &sr.Spec
	if len(s.SupportedModelFormats) == 0 {
		c.errorf(o, "spec.supportedModelFormats", "required: no InferenceService could use the runtime")
	}
	for i, f := range s.SupportedModelFormats {
		at := fmt.Sprintf("spec.supportedModelFormats[%d]", i)
		if f.Name == "" {
			c.errorf(o, at+".name", "required")
		}
		if f.Version != nil && !modelFormatVer.MatchString(*f.Version) {
			c.errorf(o, at+".version", "%q: not major, major.minor or major.minor.patch", *f.Version)
		}
		if f.Priority != nil && *f.Priority < 1 {
			c.errorf(o, at+".priority", "%d: must be 1 or more", *f.Priority)
		}
	}
	seen := map[string]bool{}
	for i, p := range s.ProtocolVersions {
		if !slices.Contains(kserveProtocols, p) {
			c.errorf(o, fmt.Sprintf("spec.protocolVersions[%d]", i), "%q is not one of %s", p, strings.Join(kserveProtocols, ", "))
		}
		if seen[p] {
			c.errorf(o, fmt.Sprintf("spec.protocolVersions[%d]", i), "%q listed twice", p)
		}
		seen[p] = true
	}
	if s.MultiModel != nil && *s.MultiModel {
		c.errorf(o, "spec.multiModel", "true: tfcat serves the one model KServe puts in %s (ModelMesh's model puller is not supported)", kserveModelDir)
	}
	vols := map[string]bool{}
	for _, v := range s.Volumes {
		vols[v.Name] = true
	}
	if len(s.Containers) == 0 {
		c.errorf(o, "spec.containers", "required")
	}
	found := false
	for i := range s.Containers {
		ctr := &s.Containers[i]
		at := fmt.Sprintf("spec.containers[%d]", i)
		// KServe adds its own volume (the model) to the predictor container.
		c.container(o, at, ctr, nil, true)
		for j, m := range ctr.VolumeMounts {
			if !vols[m.Name] && m.MountPath != kserveModelDir {
				c.errorf(o, fmt.Sprintf("%s.volumeMounts[%d].name", at, j), "%q is no volume of the runtime", m.Name)
			}
		}
		if ctr.Name != kserveContainer {
			continue
		}
		found = true
		if !isTfcatImage(ctr.Image) {
			c.errorf(o, at+".image", "%q is not tfcat's image", ctr.Image)
			continue
		}
		c.tfcat(o, at, ctr, nil, kserveServe, true)
	}
	if !found && len(s.Containers) > 0 {
		c.errorf(o, "spec.containers", "none is named %s: KServe runs the model server in that container and gives it the model", kserveContainer)
	}
}

func (c *checker) inferenceService(o *Object, isvc *InferenceService) {
	// KServe's own rule for names: a DNS-1035 label.
	c.meta(o, &isvc.ObjectMeta, validation.IsDNS1035Label)
	mode := isvc.Annotations["serving.kserve.io/deploymentMode"]
	if mode != "" && !slices.Contains(kserveModes, mode) {
		c.errorf(o, "metadata.annotations", "serving.kserve.io/deploymentMode %q is not one of %s", mode, strings.Join(kserveModes, ", "))
	}
	p := &isvc.Spec.Predictor
	if p.MinReplicas != nil && *p.MinReplicas < 0 {
		c.errorf(o, "spec.predictor.minReplicas", "negative")
	}
	if p.MaxReplicas < 0 {
		c.errorf(o, "spec.predictor.maxReplicas", "negative")
	}
	if p.MinReplicas != nil && p.MaxReplicas != 0 && *p.MinReplicas > p.MaxReplicas {
		c.errorf(o, "spec.predictor", "minReplicas %d is above maxReplicas %d", *p.MinReplicas, p.MaxReplicas)
	}
	if sc := p.SecurityContext; sc != nil {
		if sc.RunAsUser != nil && *sc.RunAsUser != c.opts.User.UID {
			c.errorf(o, "spec.predictor.securityContext.runAsUser", "%d, but the image's user is %d", *sc.RunAsUser, c.opts.User.UID)
		}
	}
	m := p.Model
	if m == nil {
		c.errorf(o, "spec.predictor.model", "required: the model and its format pick the runtime")
		return
	}
	if len(p.Containers) > 0 {
		c.errorf(o, "spec.predictor.containers", "set beside model: KServe takes the predictor for a custom one")
	}
	if m.ModelFormat.Name == "" {
		c.errorf(o, "spec.predictor.model.modelFormat.name", "required")
	}
	if m.StorageURI == nil || *m.StorageURI == "" {
		c.errorf(o, "spec.predictor.model.storageUri", "required: KServe would give tfcat an empty %s", kserveModelDir)
	} else if !slices.ContainsFunc(storageSchemes, func(s string) bool { return strings.HasPrefix(*m.StorageURI, s) }) {
		c.errorf(o, "spec.predictor.model.storageUri", "%q: not one of KServe's storage schemes (%s)", *m.StorageURI, strings.Join(storageSchemes, ", "))
	}
	protocol := "v1" // KServe's default
	if m.ProtocolVersion != nil {
		protocol = *m.ProtocolVersion
		if !slices.Contains(kserveProtocols, protocol) {
			c.errorf(o, "spec.predictor.model.protocolVersion", "%q is not one of %s", protocol, strings.Join(kserveProtocols, ", "))
		}
	}

	// The runtime, as KServe picks it: the one named, or one whose format
	// has autoSelect; it must support the format (name, or name:version)
	// and the protocol.
	var runtimes []*ServingRuntime
	for _, other := range c.objs {
		if sr, ok := other.Obj.(*ServingRuntime); ok && (m.Runtime == nil || sr.Name == *m.Runtime) {
			runtimes = append(runtimes, sr)
		}
	}
	if m.Runtime != nil && len(runtimes) == 0 {
		c.errorf(o, "spec.predictor.model.runtime", "%q is no ServingRuntime in these files", *m.Runtime)
		return
	}
	var chosen *ServingRuntime
	for _, sr := range runtimes {
		if sr.Spec.Disabled != nil && *sr.Spec.Disabled {
			continue
		}
		if supportsFormat(sr, m) && (len(sr.Spec.ProtocolVersions) == 0 || slices.Contains(sr.Spec.ProtocolVersions, protocol)) {
			chosen = sr
			break
		}
	}
	if chosen == nil {
		format := m.ModelFormat.Name
		if m.ModelFormat.Version != nil {
			format += " version " + *m.ModelFormat.Version
		}
		c.errorf(o, "spec.predictor.model", "no ServingRuntime in these files supports model format %s with protocol %s (KServe: \"no runtime found to support predictor\")", format, protocol)
		return
	}
	for _, ctr := range chosen.Spec.Containers {
		if ctr.Name == kserveContainer && len(ctr.Ports) > 1 && !slices.Contains(kserveRawModes, mode) {
			c.errorf(o, "metadata.annotations", "runtime %s's container has %d ports, which only RawDeployment (Standard) mode serves: Knative allows one; annotate serving.kserve.io/deploymentMode: RawDeployment", chosen.Name, len(ctr.Ports))
		}
	}
}

// supportsFormat is KServe's RuntimeSupportsModel: a runtime named by the
// InferenceService offers all its formats, otherwise only those with
// autoSelect; a format offers its name and, with a version, name:version.
func supportsFormat(sr *ServingRuntime, m *ModelSpec) bool {
	want := "mt:" + m.ModelFormat.Name
	if m.ModelFormat.Version != nil {
		want += ":" + *m.ModelFormat.Version
	}
	for _, f := range sr.Spec.SupportedModelFormats {
		if m.Runtime == nil && (f.AutoSelect == nil || !*f.AutoSelect) {
			continue
		}
		if want == "mt:"+f.Name || (f.Version != nil && want == "mt:"+f.Name+":"+*f.Version) {
			return true
		}
	}
	return false
}

// ---- TFJob ----

func (c *checker) tfJob(o *Object, j *TFJob) {
	c.meta(o, &j.ObjectMeta, validation.IsDNS1035Label)
	if p := j.Spec.RunPolicy.CleanPodPolicy; p != nil && !slices.Contains(tfCleanPodPolicy, *p) {
		c.errorf(o, "spec.runPolicy.cleanPodPolicy", "%q is not one of %s", *p, strings.Join(tfCleanPodPolicy, ", "))
	}
	if len(j.Spec.TFReplicaSpecs) == 0 {
		c.errorf(o, "spec.tfReplicaSpecs", "required")
	}
	for typ, rs := range j.Spec.TFReplicaSpecs {
		at := "spec.tfReplicaSpecs." + typ
		if !slices.Contains(tfReplicaTypes, typ) {
			c.errorf(o, at, "%q is not one of %s", typ, strings.Join(tfReplicaTypes, ", "))
		}
		if rs == nil {
			c.errorf(o, at, "empty")
			continue
		}
		if rs.RestartPolicy != "" && !slices.Contains(tfRestartPolicies, rs.RestartPolicy) {
			c.errorf(o, at+".restartPolicy", "%q is not one of %s", rs.RestartPolicy, strings.Join(tfRestartPolicies, ", "))
		}
		if rs.Replicas != nil && *rs.Replicas < 0 {
			c.errorf(o, at+".replicas", "negative")
		}
		if (typ == "Chief" || typ == "Master") && rs.Replicas != nil && *rs.Replicas > 1 {
			c.errorf(o, at+".replicas", "a TFJob has one %s", typ)
		}
		spec := &rs.Template.Spec
		c.pod(o, at+".template.spec", spec, serveWant{}, false)
		if !slices.ContainsFunc(spec.Containers, func(ctr corev1.Container) bool { return ctr.Name == "tensorflow" }) {
			c.errorf(o, at+".template.spec.containers", "none is named tensorflow: the training operator sets TF_CONFIG and the port there")
		}
	}
}
