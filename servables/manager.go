// Package servables serves several models, each from a base path of numbered
// version folders, as TensorFlow Serving does: it watches the base paths,
// loads new versions in the background, checks them, swaps them in without
// dropping a request and unloads the versions its policy no longer wants.
//
// A Manager is a serving.Models: serving.NewHandler(mgr) answers TensorFlow
// Serving's REST API for all of it. Its models come from a ModelServerConfig
// (TensorFlow Serving's --model_config_file, text format: ReadConfig), or
// SingleModel (--model_name and --model_base_path).
//
// A version is a folder named by its number under the model's base path
// (base/1, base/2, ...) holding anything model.Open reads: a SavedModel or a
// folder tfcat train wrote. Other names (base/2.tmp, base/.2, base/02) are
// not versions, so a version can be written under another name and renamed
// when complete, TensorFlow Serving's convention. Every Options.Poll the
// Manager lists each base path and:
//
//   - loads, in the background, each version the model's policy wants (the
//     latest one by default; latest N, all or specific versions) that it has
//     not loaded. A folder is loaded once its files (names, sizes, times)
//     stay the same over Options.Settle, and its load is dropped if they
//     change while it runs: a folder still being written is not served.
//   - checks the version before serving it: model.Open's op allowlist, the
//     input size and classes (serving.New), one warm-up prediction of a
//     blank image that must give one finite probability per class.
//   - swaps it in: new requests for the latest version (or its number or
//     label) get it; requests in flight finish on the version they acquired.
//   - retires the versions the policy no longer wants once one it wants is
//     available, or at once when the base path holds no versions: each is
//     unloaded (its Server closed, then its model) after its last request
//     releases it, and the memory it held is returned to the OS.
//
// A version that fails to load is logged (one line naming its folder and
// why), reported by Status as StateEnd with the error, and not tried again
// until its folder's files change; the versions already loaded keep serving.
// A base path that cannot be listed is logged and changes nothing.
package servables

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	configpb "github.com/wamuir/graft/tensorflow/serving/config_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/serving"
)

// Defaults of Options.
const (
	// DefaultPoll is TensorFlow Serving's --file_system_poll_wait_seconds.
	DefaultPoll = time.Second
	// DefaultSettle is how long a new version folder must stay unchanged
	// before it is loaded.
	DefaultSettle = 200 * time.Millisecond
)

// Options set up a Manager.
type Options struct {
	// Model is how every version is opened (session, trust, class names).
	Model model.Options
	// Serving configures each version's Server: its limits and batching.
	// Name and Version are the model's and the version's; Classes, when
	// nil, and Source are the version's own.
	Serving serving.Config
	// Poll is how often the base paths are listed; DefaultPoll when zero.
	// Negative: once, when a config is applied (TensorFlow Serving's
	// --file_system_poll_wait_seconds=0).
	Poll time.Duration
	// Settle is how long a new version folder's files must stay unchanged
	// before it is loaded; DefaultSettle when zero, no wait when negative.
	Settle time.Duration
	// Logf, when set, receives one line per load, failure and unload.
	Logf func(format string, args ...any)
	// OnState, when set, is called as a version changes state (err is a
	// failed load's), outside the Manager's locks: for metrics.
	OnState func(model string, version int64, state serving.VersionState, err error)
	// WarmUp, when set, is called by a version's checks after its blank-image
	// warm-up prediction, with the version's Server and folder: to replay
	// assets.extra/tf_serving_warmup_requests (grpcapi.WarmUp). An error
	// fails the load, as a failed check does.
	WarmUp func(srv *serving.Server, versionDir string) error
}

// Manager serves the versions of several models; it is a serving.Models.
// Its methods are safe for concurrent use.
type Manager struct {
	opt    Options
	reload sync.Mutex // serialises Reload and Close
	mu     sync.Mutex // guards everything below and every servable's and version's state
	models map[string]*servable
	cfg    *configpb.ModelServerConfig
	closed bool
	wg     sync.WaitGroup // pollers, loads and unloads
}

// servable is one model: its base path, policy and versions.
type servable struct {
	name, base string
	policy     policy
	labels     map[string]int64
	versions   map[int64]*version
	// present maps the versions under base at the last successful listing
	// to their folders; nil before one.
	present map[int64]string
	// prev is the servable this one replaces (its base path changed): it
	// answers until this one has a version available.
	prev    *servable
	removed bool // no longer configured: every version retires
	stop    chan struct{}
	pollMu  sync.Mutex // one poll at a time
	lastErr string     // the last listing error logged, to log each once
}

// version is one version of a servable.
type version struct {
	name    string // the model's
	n       int64
	path    string
	state   serving.VersionState
	err     error         // why the load failed (state END)
	fp      string        // the folder's fingerprint when the load failed
	busy    bool          // a load is running
	done    chan struct{} // closed when the running load ends
	srv     *serving.Server
	mdl     *model.Model
	refs    int  // requests holding the version
	retired bool // unloaded once refs is 0
}

// New applies cfg (see Reload) to a new Manager and returns it once the
// versions its policies want have loaded or failed. A model none of whose
// versions loaded is an error, and nothing is left loaded; a model whose
// base path holds no version yet is served once one appears.
func New(cfg *configpb.ModelServerConfig, opt Options) (*Manager, error) {
	if opt.Poll == 0 {
		opt.Poll = DefaultPoll
	}
	if opt.Settle == 0 {
		opt.Settle = DefaultSettle
	}
	if opt.Logf == nil {
		opt.Logf = func(string, ...any) {}
	}
	m := &Manager{opt: opt, models: map[string]*servable{}}
	if err := m.Reload(cfg); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Reload applies a new config: models added are loaded, models removed
// retire all their versions, changed policies and labels take effect, a
// changed base path loads the new one while the old one answers. A config
// whose content is wrong (see ParseConfig for the syntax) is refused with
// the error and changes nothing. Reload returns once the versions the new
// config wants have loaded or failed; a model added (or moved) none of whose
// versions loaded is an error then, though the config stays applied, as
// TensorFlow Serving's HandleReloadConfigRequest answers.
//
// A label may name a version that is not available: requests for the label
// get NotFound until it is (TensorFlow Serving refuses such a config unless
// --allow_version_labels_for_unavailable_models).
func (m *Manager) Reload(cfg *configpb.ModelServerConfig) error {
	specs, err := compile(cfg)
	if err != nil {
		return fmt.Errorf("model config: %w", err)
	}
	m.reload.Lock()
	defer m.reload.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errors.New("servables: the manager is closed")
	}
	var (
		started []*servable // new: their pollers start below
		repoll  []*servable // policy changed
		unload  []*version
		stopped []*servable
	)
	keep := map[string]bool{}
	for _, sp := range specs {
		keep[sp.name] = true
		old := m.models[sp.name]
		if old != nil && old.base == sp.base {
			if !old.policy.equal(sp.policy) {
				repoll = append(repoll, old)
			}
			old.policy, old.labels = sp.policy, sp.labels
			unload = append(unload, m.reconcile(old)...)
			continue
		}
		s := &servable{name: sp.name, base: sp.base, policy: sp.policy, labels: sp.labels,
			versions: map[int64]*version{}, stop: make(chan struct{})}
		if old != nil {
			// The old base path answers until the new one has a version:
			// it stops polling, and a replaced predecessor of its own
			// retires now.
			s.prev = old
			stopped = append(stopped, old)
			if old.prev != nil {
				unload = append(unload, m.retireAll(old.prev)...)
				old.prev = nil
			}
		}
		m.models[sp.name] = s
		started = append(started, s)
	}
	for name, s := range m.models {
		if !keep[name] {
			delete(m.models, name)
			stopped = append(stopped, s)
			unload = append(unload, m.retireAll(s)...)
			if s.prev != nil {
				unload = append(unload, m.retireAll(s.prev)...)
			}
		}
	}
	m.cfg = proto.Clone(cfg).(*configpb.ModelServerConfig)
	m.mu.Unlock()

	for _, s := range stopped {
		close(s.stop)
	}
	m.unloadAll(unload)
	for _, s := range append(slices.Clone(started), repoll...) {
		m.poll(s)
	}
	for _, s := range started {
		if m.opt.Poll > 0 {
			m.wg.Add(1)
			go m.run(s)
		}
	}
	// Wait for the loads these polls started (and those already running).
	var errs []error
	for _, s := range append(started, repoll...) {
		m.wait(s)
	}
	for _, s := range started {
		if err := m.failed(s); err != nil {
			errs = append(errs, err)
		}
	}
	m.mu.Lock()
	for _, s := range append(started, repoll...) {
		for l, v := range s.labels {
			if r := s.versions[v]; r == nil || r.state != serving.StateAvailable {
				m.opt.Logf("model %s: label %s names version %d, which is not available", s.name, l, v)
			}
		}
	}
	m.mu.Unlock()
	return errors.Join(errs...)
}

// wait returns once no load of s is running.
func (m *Manager) wait(s *servable) {
	for {
		m.mu.Lock()
		var done chan struct{}
		for _, r := range s.versions {
			if r.busy {
				done = r.done
				break
			}
		}
		m.mu.Unlock()
		if done == nil {
			return
		}
		<-done
	}
}

// failed is an error when s has no version available and some failed.
func (m *Manager) failed(s *servable) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, n := range slices.Sorted(maps.Keys(s.versions)) {
		r := s.versions[n]
		if r.state == serving.StateAvailable {
			return nil
		}
		if r.err != nil {
			errs = append(errs, fmt.Errorf("model %s: version %d: %w", s.name, n, r.err))
		}
	}
	return errors.Join(errs...)
}

// Config returns a copy of the config applied last.
func (m *Manager) Config() *configpb.ModelServerConfig {
	m.mu.Lock()
	defer m.mu.Unlock()
	return proto.Clone(m.cfg).(*configpb.ModelServerConfig)
}

// Close stops polling, waits for the loads in progress, and unloads every
// version; one still held by a request is unloaded when it is released.
// Shut the front ends down first.
func (m *Manager) Close() error {
	m.reload.Lock()
	defer m.reload.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	var unload []*version
	for name, s := range m.models {
		close(s.stop)
		unload = append(unload, m.retireAll(s)...)
		if s.prev != nil {
			unload = append(unload, m.retireAll(s.prev)...)
		}
		delete(m.models, name)
	}
	m.mu.Unlock()
	m.unloadAll(unload)
	m.wg.Wait()
	return nil
}

// Names lists the models served, sorted.
func (m *Manager) Names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.models))
}

// Acquire returns the Server of the version spec asks for: its number, the
// version its label names, or the latest available. Call release once the
// request is done; until then the version stays loaded.
func (m *Manager) Acquire(spec serving.ModelSpec) (*serving.Server, int64, func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.models[spec.Name]
	if s == nil {
		return nil, 0, nil, serving.NotFound(spec)
	}
	want := spec.Version
	if spec.Label != "" && want == 0 {
		v, ok := s.labels[spec.Label]
		if !ok {
			return nil, 0, nil, serving.NotFound(spec)
		}
		want = v
	}
	r := s.pick(want)
	if r == nil && s.prev != nil {
		r = s.prev.pick(want)
	}
	if r == nil {
		if spec.Label != "" {
			return nil, 0, nil, &serving.NotFoundError{Msg: fmt.Sprintf("%s: label %s names version %d, which is not available",
				serving.NotFound(serving.ModelSpec{Name: spec.Name, Version: want}).Msg, spec.Label, want)}
		}
		return nil, 0, nil, serving.NotFound(spec)
	}
	r.refs++
	var once sync.Once
	return r.srv, r.n, func() { once.Do(func() { m.release(r) }) }, nil
}

// pick returns version n if available, or the latest available when n is 0.
func (s *servable) pick(n int64) *version {
	if n != 0 {
		if r := s.versions[n]; r != nil && r.state == serving.StateAvailable {
			return r
		}
		return nil
	}
	var best *version
	for _, r := range s.versions {
		if r.state == serving.StateAvailable && (best == nil || r.n > best.n) {
			best = r
		}
	}
	return best
}

func (m *Manager) release(r *version) {
	m.mu.Lock()
	r.refs--
	last := r.retired && r.refs == 0
	m.mu.Unlock()
	if last {
		// Not on the request's goroutine: the reply may still be on its way.
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.unloadAll([]*version{r})
		}()
	}
}

// Status reports a model's versions, oldest first, or the one spec names
// (by number or label). Versions that failed to load are StateEnd with the
// error; versions unloaded stay listed as StateEnd while their folder is
// there.
func (m *Manager) Status(spec serving.ModelSpec) ([]serving.VersionStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.models[spec.Name]
	if s == nil {
		return nil, serving.NotFound(spec)
	}
	want := spec.Version
	if spec.Label != "" && want == 0 {
		v, ok := s.labels[spec.Label]
		if !ok {
			return nil, serving.NotFound(spec)
		}
		want = v
	}
	all := map[int64]*version{}
	if s.prev != nil {
		maps.Copy(all, s.prev.versions)
	}
	maps.Copy(all, s.versions)
	if want != 0 {
		r := all[want]
		if r == nil {
			return nil, &serving.NotFoundError{Msg: "Could not find version " + strconv.FormatInt(want, 10) + " of model " + spec.Name}
		}
		return []serving.VersionStatus{r.status()}, nil
	}
	if len(all) == 0 {
		return nil, &serving.NotFoundError{Msg: "Could not find any versions of model " + spec.Name}
	}
	var out []serving.VersionStatus
	for _, n := range slices.Sorted(maps.Keys(all)) {
		out = append(out, all[n].status())
	}
	return out, nil
}

func (r *version) status() serving.VersionStatus {
	return serving.VersionStatus{Version: r.n, State: r.state, Err: r.err}
}
