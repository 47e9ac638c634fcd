package serving

import (
	"context"
	"sync"
	"time"
)

// Hooks for monitoring (package serving/monitoring): what the batcher ran,
// and which model version answered a request.

// Batch is one Session.Run of the batcher, as Config.OnBatch receives it.
type Batch struct {
	Model   string // Config.Name
	Version int64  // Config.Version
	// Images is the number of images run together, Requests the number
	// of requests they came from.
	Images, Requests int
	// Duration is the model's Predict call.
	Duration time.Duration
	// Err is the model's failure; nil when it answered.
	Err error
}

// batchHook is cfg.OnBatch bound to cfg's model and version, or nil.
func batchHook(cfg Config) func(images, requests int, d time.Duration, err error) {
	if cfg.OnBatch == nil {
		return nil
	}
	on, name, version := cfg.OnBatch, cfg.Name, cfg.Version
	return func(images, requests int, d time.Duration, err error) {
		on(Batch{Model: name, Version: version, Images: images, Requests: requests, Duration: d, Err: err})
	}
}

// Served is where a request's handler reports the model version that answered
// it, for a middleware wrapped around the handler (WithServed) to read once
// the handler has returned. It is safe for concurrent use.
type Served struct {
	mu      sync.Mutex
	name    string
	version int64
	set     bool
}

type servedKey struct{}

// WithServed returns a context carrying a new Served, for the handler's
// request: the handler reports to it through ReportServed.
func WithServed(ctx context.Context) (context.Context, *Served) {
	s := new(Served)
	return context.WithValue(ctx, servedKey{}, s), s
}

// ReportServed tells the Served that ctx carries (WithServed), if any, that
// model name at version answered the request: the version acquired, which
// a request for the latest version or a label does not name. Without a
// Served in ctx it does nothing. The last report counts.
func ReportServed(ctx context.Context, name string, version int64) {
	if s, ok := ctx.Value(servedKey{}).(*Served); ok {
		s.mu.Lock()
		s.name, s.version, s.set = name, version, true
		s.mu.Unlock()
	}
}

// Get returns what was reported; ok is false when nothing was.
func (s *Served) Get() (name string, version int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.name, s.version, s.set
}
