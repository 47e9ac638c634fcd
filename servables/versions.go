package servables

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"

	"github.com/tfcat/tfcat/model"
	"github.com/tfcat/tfcat/savedmodel"
	"github.com/tfcat/tfcat/serving"
)

// run polls s every Options.Poll until s stops.
func (m *Manager) run(s *servable) {
	defer m.wg.Done()
	t := time.NewTicker(m.opt.Poll)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			m.poll(s)
		}
	}
}

// poll lists s's base path, starts the loads its policy wants and retires
// what it no longer wants.
func (m *Manager) poll(s *servable) {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	present, err := listVersions(s.base)
	m.mu.Lock()
	if err != nil {
		// A base path that cannot be listed (a network file system
		// away for a while) changes nothing: TensorFlow Serving's way.
		if err.Error() != s.lastErr {
			m.opt.Logf("model %s: listing the base path: %v; serving the versions loaded", s.name, err)
		}
		s.lastErr = err.Error()
		m.mu.Unlock()
		return
	}
	if len(present) == 0 && (s.present == nil || len(s.present) > 0) {
		m.opt.Logf("model %s: no versions under %s", s.name, s.base)
	}
	s.lastErr = ""
	s.present = present
	// Records of versions gone from disk and not loaded leave the status.
	for n, r := range s.versions {
		if _, ok := present[n]; !ok && !r.busy && (r.state == serving.StateEnd || r.state == serving.StateStart) {
			delete(s.versions, n)
		}
	}
	var retry []*version // failed loads, tried again if their folder changed
	for _, n := range s.policy.want(mapKeys(present)) {
		r := s.versions[n]
		switch {
		case s.removed || m.closed:
		case r == nil:
			r = &version{name: s.name, n: n, path: present[n], state: serving.StateStart}
			s.versions[n] = r
			m.startLoad(s, r)
		case r.busy || r.retired:
			// Loading, or unloading: the next poll sees it again.
		case r.state == serving.StateEnd && r.err != nil:
			retry = append(retry, r)
		case r.state == serving.StateEnd, r.state == serving.StateStart:
			// Unloaded earlier and wanted again, or a folder that was
			// still changing.
			m.startLoad(s, r)
		}
	}
	unload := m.reconcile(s)
	m.mu.Unlock()
	m.unloadAll(unload)

	for _, r := range retry {
		fp, err := fingerprint(r.path)
		m.mu.Lock()
		if err == nil && fp != r.fp && !r.busy && r.state == serving.StateEnd && !s.removed && !m.closed {
			m.opt.Logf("model %s: version %d: %s changed; loading it again", s.name, r.n, r.path)
			m.startLoad(s, r)
		}
		m.mu.Unlock()
	}
}

func mapKeys(m map[int64]string) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// listVersions maps the version folders under base to their paths: folders
// named by a positive number in its plain decimal form.
func listVersions(base string) (map[int64]string, error) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, err
	}
	out := map[int64]string{}
	for _, e := range entries {
		n, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || n <= 0 || strconv.FormatInt(n, 10) != e.Name() {
			continue
		}
		path := filepath.Join(base, e.Name())
		if fi, err := os.Stat(path); err != nil || !fi.IsDir() { // follows links, as TensorFlow Serving does
			continue
		}
		out[n] = path
	}
	return out, nil
}

// startLoad loads r in the background; m.mu is held.
func (m *Manager) startLoad(s *servable, r *version) {
	r.busy, r.done, r.state, r.err, r.fp = true, make(chan struct{}), serving.StateStart, nil, ""
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.load(s, r)
	}()
}

// load waits for r's folder to settle, loads and checks it, and makes it
// available.
func (m *Manager) load(s *servable, r *version) {
	m.notify(s, r.n, serving.StateStart, nil)
	fp, err := m.settle(s, r.path)
	if err == errChanging || err == errStopped {
		m.mu.Lock()
		r.busy = false
		close(r.done)
		m.mu.Unlock()
		if err == errChanging {
			m.opt.Logf("model %s: version %d: %s is still being written; loading it once it stays unchanged", s.name, r.n, r.path)
		}
		return
	}
	var (
		mdl *model.Model
		srv *serving.Server
		t0  = time.Now()
	)
	if err == nil {
		m.mu.Lock()
		r.state = serving.StateLoading
		m.mu.Unlock()
		m.notify(s, r.n, serving.StateLoading, nil)
		mdl, srv, err = m.open(s.name, r.n, r.path)
		// A folder whose files changed while it loaded may have been read
		// half-written: drop what was loaded and try again at the next poll.
		if after, ferr := fingerprint(r.path); ferr != nil || after != fp {
			closeLoaded(mdl, srv)
			m.mu.Lock()
			r.busy, r.state = false, serving.StateStart
			close(r.done)
			m.mu.Unlock()
			m.opt.Logf("model %s: version %d: %s changed while it loaded; loading it again once it stays unchanged", s.name, r.n, r.path)
			return
		}
	}
	m.mu.Lock()
	r.busy = false
	close(r.done)
	if err != nil {
		lerr := &LoadError{Path: r.path, Err: err}
		r.state, r.err, r.fp = serving.StateEnd, lerr, fp
		m.mu.Unlock()
		m.opt.Logf("model %s: version %d: %v; the versions loaded keep serving", s.name, r.n, lerr)
		m.notify(s, r.n, serving.StateEnd, lerr)
		return
	}
	r.mdl, r.srv, r.state = mdl, srv, serving.StateAvailable
	m.opt.Logf("model %s: version %d: loaded %s in %.2fs", s.name, r.n, r.path, time.Since(t0).Seconds())
	var unload []*version
	if s.removed || m.closed {
		unload = m.retireAll(s)
	} else {
		unload = m.reconcile(s)
	}
	m.mu.Unlock()
	m.notify(s, r.n, serving.StateAvailable, nil)
	m.unloadAll(unload)
}

var (
	errChanging = errors.New("the folder is changing")
	errStopped  = errors.New("stopped")
)

// settle returns the fingerprint of a folder whose files stay the same over
// Options.Settle, errChanging for one that changed, or errStopped when s
// stops meanwhile; another error is the folder's.
func (m *Manager) settle(s *servable, path string) (string, error) {
	fp, err := fingerprint(path)
	if err != nil || m.opt.Settle < 0 {
		return fp, err
	}
	t := time.NewTimer(m.opt.Settle)
	defer t.Stop()
	select {
	case <-s.stop:
		return "", errStopped
	case <-t.C:
	}
	again, err := fingerprint(path)
	if err != nil {
		return "", err
	}
	if again != fp {
		return "", errChanging
	}
	return fp, nil
}

// open loads a version and checks it: the op allowlist (model.Open), the
// input size and classes (serving.New), one warm-up prediction, and
// Options.WarmUp when set.
func (m *Manager) open(name string, n int64, path string) (*model.Model, *serving.Server, error) {
	mdl, err := model.Open(path, m.opt.Model)
	if err != nil {
		if !savedmodel.IsSavedModel(path) && !exists(filepath.Join(path, "checkpoint")) {
			return nil, nil, notFoundError{err}
		}
		return nil, nil, err
	}
	cfg := m.opt.Serving
	cfg.Name, cfg.Version, cfg.Source = name, n, mdl.Path
	if cfg.Classes == nil {
		cfg.Classes = mdl.ClassNames()
	}
	srv, err := serving.New(mdl, cfg)
	if err != nil {
		mdl.Close()
		return nil, nil, checkError{err}
	}
	if err := warmUp(mdl); err != nil {
		closeLoaded(mdl, srv)
		return nil, nil, checkError{err}
	}
	if m.opt.WarmUp != nil {
		if err := m.opt.WarmUp(srv, path); err != nil {
			closeLoaded(mdl, srv)
			return nil, nil, checkError{err}
		}
	} else if _, err := os.Stat(filepath.Join(path, "assets.extra", "tf_serving_warmup_requests")); err == nil {
		m.opt.Logf("model %s: version %d: assets.extra/tf_serving_warmup_requests is not replayed; tfcat warms up with one blank image", name, n)
	}
	return mdl, srv, nil
}

// warmUp runs one blank image: the first Session.Run sets TensorFlow up (the
// first request would wait for it), and a model that cannot predict is
// refused before it serves.
func warmUp(mdl *model.Model) error {
	h, w, c := mdl.InputSize()
	k := mdl.NumClasses()
	p, err := mdl.Predict(make([]float32, h*w*c), 1)
	if err != nil {
		return fmt.Errorf("warm-up prediction: %w", err)
	}
	if len(p) != k {
		return fmt.Errorf("warm-up prediction: %d outputs for %d classes", len(p), k)
	}
	for _, v := range p {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("warm-up prediction: probabilities %v are not finite", p)
		}
	}
	return nil
}

func closeLoaded(mdl *model.Model, srv *serving.Server) {
	if srv != nil {
		srv.Close()
	}
	if mdl != nil {
		mdl.Close()
	}
}

// reconcile retires the available versions s's policy no longer wants, once
// a version it wants is available (or it wants none: the base path is
// empty), and a predecessor once s has a version. It returns the versions to
// unload now (held by no request); m.mu is held.
func (m *Manager) reconcile(s *servable) []*version {
	if s.removed {
		return m.retireAll(s)
	}
	var unload []*version
	if s.prev != nil && s.pick(0) != nil {
		unload = append(unload, m.retireAll(s.prev)...)
		s.prev = nil
	}
	if s.present == nil {
		return unload
	}
	want := s.policy.want(mapKeys(s.present))
	ready := len(want) == 0
	for _, n := range want {
		if r := s.versions[n]; r != nil && r.state == serving.StateAvailable {
			ready = true
		}
	}
	if !ready {
		return unload
	}
	for _, r := range s.versions {
		if r.state == serving.StateAvailable && !slices.Contains(want, r.n) {
			unload = append(unload, m.retire(s, r)...)
		}
	}
	return unload
}

// retireAll retires every available version of s; m.mu is held.
func (m *Manager) retireAll(s *servable) []*version {
	s.removed = true
	var unload []*version
	for _, r := range s.versions {
		if r.state == serving.StateAvailable {
			unload = append(unload, m.retire(s, r)...)
		}
	}
	return unload
}

// retire takes r out of service: no request acquires it any more, and it is
// unloaded after the last one holding it releases it (returned here when
// none does); m.mu is held.
func (m *Manager) retire(s *servable, r *version) []*version {
	r.retired, r.state = true, serving.StateUnloading
	m.opt.Logf("model %s: version %d: unloading", s.name, r.n)
	if r.refs == 0 {
		return []*version{r}
	}
	return nil
}

// unloadAll closes each version's Server, then its model, and hands the
// memory back to the OS.
func (m *Manager) unloadAll(rs []*version) {
	if len(rs) == 0 {
		return
	}
	for _, r := range rs {
		m.mu.Lock()
		srv, mdl := r.srv, r.mdl
		r.srv, r.mdl = nil, nil
		m.mu.Unlock()
		closeLoaded(mdl, srv)
		m.mu.Lock()
		r.state, r.retired = serving.StateEnd, false
		m.mu.Unlock()
		m.opt.Logf("model %s: version %d: unloaded", r.name, r.n)
		if m.opt.OnState != nil {
			m.opt.OnState(r.name, r.n, serving.StateEnd, nil)
		}
	}
	// TensorFlow's buffers go back through free(); the Go heap's pages
	// through FreeOSMemory.
	debug.FreeOSMemory()
	trimMalloc()
}

func (m *Manager) notify(s *servable, n int64, state serving.VersionState, err error) {
	if m.opt.OnState != nil {
		m.opt.OnState(s.name, n, state, err)
	}
}

// LoadError is a version that failed to load: its folder and why.
// serving.ErrorCode gives its code: NOT_FOUND for missing files,
// INVALID_ARGUMENT for a graph the op allowlist refuses or a model that
// fails its checks, UNKNOWN otherwise.
type LoadError struct {
	Path string
	Err  error
}

func (e *LoadError) Error() string { return fmt.Sprintf("loading %s: %v", e.Path, e.Err) }

func (e *LoadError) Unwrap() error { return e.Err }

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// notFoundError is a folder holding no model: neither a SavedModel nor a
// checkpoint file, TensorFlow Serving's NOT_FOUND.
type notFoundError struct{ error }

func (e notFoundError) Unwrap() error { return e.error }

func (notFoundError) ErrorCode() corepb.Code { return corepb.Code_NOT_FOUND }

// checkError is a model that loaded but failed a check.
type checkError struct{ error }

func (e checkError) Unwrap() error { return e.error }

func (checkError) ErrorCode() corepb.Code { return corepb.Code_INVALID_ARGUMENT }

// fingerprint sums the names, sizes, modes and modification times of the
// files under dir: equal sums, unchanged files (as far as a poll can tell).
func fingerprint(dir string) (string, error) {
	// A version may be a link to its folder (listVersions follows links);
	// WalkDir would not go into it.
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	h := fnv.New128a()
	count := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if count++; count > maxFiles {
			return fmt.Errorf("more than %d files", maxFiles)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(h, "%s\x00%d\x00%o\x00%d\x00", rel, fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

// maxFiles bounds the files of a version folder that fingerprint reads.
const maxFiles = 100000
