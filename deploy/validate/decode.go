package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is one decoded document of a manifest file.
type Object struct {
	File  string // the file's name, for messages
	Index int    // the document's place in the file, from 0
	Kind  string
	Name  string
	Obj   any // *appsv1.Deployment, *corev1.Service, *ServingRuntime, *InferenceService, *TFJob
}

func (o *Object) String() string {
	return fmt.Sprintf("%s: %s %s", o.File, o.Kind, o.Name)
}

// kinds maps apiVersion and kind to a new typed object to decode into.
var kinds = map[string]func() any{
	"apps/v1 Deployment": func() any { return new(appsv1.Deployment) },
	"v1 Service":         func() any { return new(corev1.Service) },
	"serving.kserve.io/v1alpha1 ServingRuntime":  func() any { return new(ServingRuntime) },
	"serving.kserve.io/v1beta1 InferenceService": func() any { return new(InferenceService) },
	"kubeflow.org/v1 TFJob":                      func() any { return new(TFJob) },
}

// Decode splits a YAML file into its documents and decodes each strictly into
// its API type, as `kubectl apply --dry-run=client --validate=strict` would
// against the server's schema: an unknown field, a field in the wrong case, a
// duplicate field or a value of the wrong type is an error, and so is a kind this validator does not
// know. Empty documents (comments only) are skipped.
func Decode(file string, data []byte) ([]*Object, []error) {
	var objs []*Object
	var errs []error
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", file, i+1, err))
			break
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", file, i+1, err))
			continue
		}
		if s := strings.TrimSpace(string(j)); s == "null" || s == "" {
			continue
		}
		var tm struct {
			metav1.TypeMeta `json:",inline"`
			Metadata        struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", file, i+1, err))
			continue
		}
		o := &Object{File: file, Index: i, Kind: tm.Kind, Name: tm.Metadata.Name}
		if o.Name == "" {
			o.Name = fmt.Sprintf("(document %d)", i+1)
		}
		mk, ok := kinds[tm.APIVersion+" "+tm.Kind]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: apiVersion %q kind %q: not a kind this validator knows (%s)", o, tm.APIVersion, tm.Kind, knownKinds()))
			continue
		}
		// Duplicate keys are YAML's to find; unknown fields, and fields in
		// the wrong case, Kubernetes' JSON decoder's (with their paths).
		j, err = yaml.YAMLToJSONStrict(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o, err))
			continue
		}
		o.Obj = mk()
		strict, err := sigsjson.UnmarshalStrict(j, o.Obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o, err))
			continue
		}
		for _, e := range strict {
			errs = append(errs, fmt.Errorf("%s: %w", o, e))
		}
		// An object with unknown fields is checked further all the same,
		// with those fields left out, so that one run reports all.
		objs = append(objs, o)
	}
	return objs, errs
}

func knownKinds() string {
	var k []string
	for n := range kinds {
		k = append(k, n)
	}
	slices.Sort(k)
	return strings.Join(k, ", ")
}
