package servables

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"

	configpb "github.com/wamuir/graft/tensorflow/serving/config_go_proto"
	"google.golang.org/protobuf/encoding/prototext"
)

// ParseConfig reads a text-format ModelServerConfig, as TensorFlow Serving's
// --model_config_file holds it:
//
//	model_config_list {
//	  config {
//	    name: "pets"
//	    base_path: "/models/pets"
//	    model_platform: "tensorflow"
//	    model_version_policy { latest { num_versions: 2 } }
//	    version_labels { key: "stable" value: 1 }
//	  }
//	}
//
// It checks the syntax only; Reload checks the content.
func ParseConfig(text []byte) (*configpb.ModelServerConfig, error) {
	cfg := &configpb.ModelServerConfig{}
	if err := prototext.Unmarshal(text, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ReadConfig reads and parses the config file at path; its errors name the
// file.
func ReadConfig(path string) (*configpb.ModelServerConfig, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// SingleModel is the config of one model served from basePath with the
// default policy (the latest version), what TensorFlow Serving's
// --model_name and --model_base_path make.
func SingleModel(name, basePath string) *configpb.ModelServerConfig {
	return &configpb.ModelServerConfig{Config: &configpb.ModelServerConfig_ModelConfigList{
		ModelConfigList: &configpb.ModelConfigList{Config: []*configpb.ModelConfig{{
			Name: name, BasePath: basePath, ModelPlatform: "tensorflow",
		}}},
	}}
}

// nameRe is the names serving accepts in URLs, for models and labels.
var nameRe = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// spec is one model of a checked config.
type spec struct {
	name, base string
	policy     policy
	labels     map[string]int64
}

// compile checks a config's content: names unique and usable in URLs,
// existing base paths, policies and labels that say something. Nothing is
// applied unless all of it passes.
func compile(cfg *configpb.ModelServerConfig) ([]spec, error) {
	if cfg == nil {
		return nil, errors.New("no config")
	}
	if cfg.GetCustomModelConfig() != nil {
		return nil, errors.New("custom_model_config is not supported: use model_config_list")
	}
	var out []spec
	seen := map[string]bool{}
	for i, mc := range cfg.GetModelConfigList().GetConfig() {
		where := fmt.Sprintf("model %d (%q)", i+1, mc.GetName())
		if !nameRe.MatchString(mc.GetName()) {
			return nil, fmt.Errorf("%s: name must be letters, digits, '.', '_' or '-'", where)
		}
		if seen[mc.GetName()] {
			return nil, fmt.Errorf("%s: the name is used twice", where)
		}
		seen[mc.GetName()] = true
		if p := mc.GetModelPlatform(); p != "" && p != "tensorflow" {
			return nil, fmt.Errorf("%s: model_platform %q: tfcat serves TensorFlow models only", where, p)
		}
		if mc.GetBasePath() == "" {
			return nil, fmt.Errorf("%s: base_path is empty", where)
		}
		if fi, err := os.Stat(mc.GetBasePath()); err != nil {
			return nil, fmt.Errorf("%s: base_path: %w", where, err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("%s: base_path %s is not a folder", where, mc.GetBasePath())
		}
		pol, err := policyOf(mc.GetModelVersionPolicy())
		if err != nil {
			return nil, fmt.Errorf("%s: model_version_policy: %w", where, err)
		}
		labels := map[string]int64{}
		for l, v := range mc.GetVersionLabels() {
			if !nameRe.MatchString(l) {
				return nil, fmt.Errorf("%s: version label %q must be letters, digits, '.', '_' or '-'", where, l)
			}
			if v <= 0 {
				return nil, fmt.Errorf("%s: version label %q: version %d must be positive", where, l, v)
			}
			labels[l] = v
		}
		out = append(out, spec{name: mc.GetName(), base: mc.GetBasePath(), policy: pol, labels: labels})
	}
	return out, nil
}

// policy is TensorFlow Serving's ModelVersionPolicy: the latest n versions,
// all, or specific ones.
type policy struct {
	all      bool
	latest   int     // when > 0
	specific []int64 // sorted, when latest is 0 and all is false
}

func policyOf(p *configpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy) (policy, error) {
	switch {
	case p == nil || p.GetPolicyChoice() == nil:
		return policy{latest: 1}, nil
	case p.GetAll() != nil:
		return policy{all: true}, nil
	case p.GetLatest() != nil:
		// TensorFlow Serving takes an unset num_versions as 1.
		return policy{latest: max(1, int(p.GetLatest().GetNumVersions()))}, nil
	}
	vs := slices.Clone(p.GetSpecific().GetVersions())
	if len(vs) == 0 {
		return policy{}, errors.New("specific names no versions")
	}
	for _, v := range vs {
		if v <= 0 {
			return policy{}, fmt.Errorf("specific version %d must be positive", v)
		}
	}
	slices.Sort(vs)
	return policy{specific: slices.Compact(vs)}, nil
}

// want picks the versions the policy serves among those present.
func (p policy) want(present []int64) []int64 {
	vs := slices.Clone(present)
	sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
	switch {
	case p.all:
		return vs
	case p.latest > 0:
		return vs[max(0, len(vs)-p.latest):]
	}
	out := vs[:0]
	for _, v := range vs {
		if _, ok := slices.BinarySearch(p.specific, v); ok {
			out = append(out, v)
		}
	}
	return out
}

func (p policy) equal(q policy) bool {
	return p.all == q.all && p.latest == q.latest && slices.Equal(p.specific, q.specific)
}

// CheckConfig checks a config's content as Reload does, applying nothing.
func CheckConfig(cfg *configpb.ModelServerConfig) error {
	_, err := compile(cfg)
	return err
}
