package main

// Go types for the custom resources in deploy/: KServe's ServingRuntime
// (serving.kserve.io/v1alpha1) and InferenceService (serving.kserve.io/v1beta1),
// and the Kubeflow training operator's TFJob (kubeflow.org/v1).
//
// Neither project's API package can be used here: the Go module proxy refuses
// github.com/kserve/kserve ("403 Forbidden: This module version is not
// available", final), and both packages pull in controller-runtime, Knative
// and more. So these types restate the JSON field names of their API
// reference (KServe's pkg/apis/serving v1alpha1 servingruntime_types.go and
// v1beta1 inference_service.go, predictor.go, predictor_model.go,
// component.go; the training operator's pkg/apis/kubeflow.org/v1
// tensorflow_types.go and common_types.go) for the parts a manifest sets,
// and reuse k8s.io/api's own types where those projects do (Container,
// Volume, PodSpec, PodTemplateSpec, ...), so that the containers are checked
// exactly as Kubernetes' own are. A field that the real types have and these
// lack is reported as unknown: add it here when a manifest needs it.
//
// encoding/json promotes the fields of embedded structs (KServe's
// `json:",inline"`), as the real types rely on.

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServingRuntime is serving.kserve.io/v1alpha1 ServingRuntime.
type ServingRuntime struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ServingRuntimeSpec `json:"spec,omitempty"`
	Status            struct{}           `json:"status,omitempty"`
}

// SupportedModelFormat is one entry of spec.supportedModelFormats.
type SupportedModelFormat struct {
	Name       string  `json:"name"`
	Version    *string `json:"version,omitempty"`
	AutoSelect *bool   `json:"autoSelect,omitempty"`
	Priority   *int32  `json:"priority,omitempty"`
}

// ServingRuntimePodSpec is the part of a pod a ServingRuntime sets.
type ServingRuntimePodSpec struct {
	Containers       []corev1.Container            `json:"containers"`
	Volumes          []corev1.Volume               `json:"volumes,omitempty"`
	NodeSelector     map[string]string             `json:"nodeSelector,omitempty"`
	Affinity         *corev1.Affinity              `json:"affinity,omitempty"`
	Tolerations      []corev1.Toleration           `json:"tolerations,omitempty"`
	Labels           map[string]string             `json:"labels,omitempty"`
	Annotations      map[string]string             `json:"annotations,omitempty"`
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	HostIPC          bool                          `json:"hostIPC,omitempty"`
}

// StorageHelper is spec.storageHelper.
type StorageHelper struct {
	Disabled bool `json:"disabled,omitempty"`
}

// ServingRuntimeSpec is a ServingRuntime's spec (the ModelMesh-only fields
// grpcEndpoint, grpcDataEndpoint, httpDataEndpoint, builtInAdapter and the
// multi-node workerSpec are left out: tfcat is a single-model runtime).
type ServingRuntimeSpec struct {
	SupportedModelFormats []SupportedModelFormat `json:"supportedModelFormats,omitempty"`
	MultiModel            *bool                  `json:"multiModel,omitempty"`
	Disabled              *bool                  `json:"disabled,omitempty"`
	ProtocolVersions      []string               `json:"protocolVersions,omitempty"`
	ServingRuntimePodSpec `json:",inline"`
	Replicas              *uint16        `json:"replicas,omitempty"`
	StorageHelper         *StorageHelper `json:"storageHelper,omitempty"`
}

// InferenceService is serving.kserve.io/v1beta1 InferenceService.
type InferenceService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              InferenceServiceSpec `json:"spec,omitempty"`
	Status            struct{}             `json:"status,omitempty"`
}

// InferenceServiceSpec is an InferenceService's spec; only the predictor is
// restated (a transformer or explainer is reported as an unknown field).
type InferenceServiceSpec struct {
	Predictor PredictorSpec `json:"predictor"`
}

// PredictorSpec is spec.predictor: here only the framework-neutral `model`
// (the built-in framework fields sklearn, tensorflow, ... select KServe's own
// runtimes, not tfcat), the pod fields and the component extension.
type PredictorSpec struct {
	Model                  *ModelSpec `json:"model,omitempty"`
	corev1.PodSpec         `json:",inline"`
	ComponentExtensionSpec `json:",inline"`
}

// ComponentExtensionSpec is the deployment configuration of a component.
type ComponentExtensionSpec struct {
	MinReplicas          *int                       `json:"minReplicas,omitempty"`
	MaxReplicas          int                        `json:"maxReplicas,omitempty"`
	ScaleTarget          *int                       `json:"scaleTarget,omitempty"`
	ScaleMetric          *string                    `json:"scaleMetric,omitempty"`
	ScaleMetricType      *string                    `json:"scaleMetricType,omitempty"`
	ContainerConcurrency *int64                     `json:"containerConcurrency,omitempty"`
	TimeoutSeconds       *int64                     `json:"timeout,omitempty"`
	CanaryTrafficPercent *int64                     `json:"canaryTrafficPercent,omitempty"`
	Labels               map[string]string          `json:"labels,omitempty"`
	Annotations          map[string]string          `json:"annotations,omitempty"`
	DeploymentStrategy   *appsv1.DeploymentStrategy `json:"deploymentStrategy,omitempty"`
}

// ModelFormat is spec.predictor.model.modelFormat.
type ModelFormat struct {
	Name    string  `json:"name"`
	Version *string `json:"version,omitempty"`
}

// ModelSpec is spec.predictor.model.
type ModelSpec struct {
	ModelFormat            ModelFormat `json:"modelFormat"`
	Runtime                *string     `json:"runtime,omitempty"`
	PredictorExtensionSpec `json:",inline"`
}

// PredictorExtensionSpec is what every predictor framework shares: the
// model's location and protocol, and overrides of the runtime's container.
type PredictorExtensionSpec struct {
	StorageURI       *string `json:"storageUri,omitempty"`
	RuntimeVersion   *string `json:"runtimeVersion,omitempty"`
	ProtocolVersion  *string `json:"protocolVersion,omitempty"`
	corev1.Container `json:",inline"`
}

// TFJob is kubeflow.org/v1 TFJob.
type TFJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              TFJobSpec `json:"spec,omitempty"`
	Status            struct{}  `json:"status,omitempty"`
}

// TFJobSpec is a TFJob's spec.
type TFJobSpec struct {
	RunPolicy           RunPolicy               `json:"runPolicy"`
	SuccessPolicy       *string                 `json:"successPolicy,omitempty"`
	TFReplicaSpecs      map[string]*ReplicaSpec `json:"tfReplicaSpecs"`
	EnableDynamicWorker bool                    `json:"enableDynamicWorker,omitempty"`
}

// RunPolicy is spec.runPolicy.
type RunPolicy struct {
	CleanPodPolicy          *string           `json:"cleanPodPolicy,omitempty"`
	TTLSecondsAfterFinished *int32            `json:"ttlSecondsAfterFinished,omitempty"`
	ActiveDeadlineSeconds   *int64            `json:"activeDeadlineSeconds,omitempty"`
	BackoffLimit            *int32            `json:"backoffLimit,omitempty"`
	SchedulingPolicy        *SchedulingPolicy `json:"schedulingPolicy,omitempty"`
	Suspend                 *bool             `json:"suspend,omitempty"`
	ManagedBy               *string           `json:"managedBy,omitempty"`
}

// SchedulingPolicy is spec.runPolicy.schedulingPolicy (gang scheduling).
type SchedulingPolicy struct {
	MinAvailable           *int32                                     `json:"minAvailable,omitempty"`
	Queue                  string                                     `json:"queue,omitempty"`
	MinResources           *map[corev1.ResourceName]resource.Quantity `json:"minResources,omitempty"`
	PriorityClass          string                                     `json:"priorityClass,omitempty"`
	ScheduleTimeoutSeconds *int32                                     `json:"scheduleTimeoutSeconds,omitempty"`
}

// ReplicaSpec is one entry of spec.tfReplicaSpecs.
type ReplicaSpec struct {
	Replicas      *int32                 `json:"replicas,omitempty"`
	Template      corev1.PodTemplateSpec `json:"template,omitempty"`
	RestartPolicy string                 `json:"restartPolicy,omitempty"`
}
