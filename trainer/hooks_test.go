package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/network"
)

// epochCounter counts epochs; its count is kept in checkpoints.
type epochCounter struct {
	Epochs   int
	restored []byte
	stopAt   int // ErrStop at this epoch (0: never)
}

func (c *epochCounter) Event(e Event) error {
	if e.Kind == Epoch {
		c.Epochs++
		if c.Epochs == c.stopAt {
			return ErrStop
		}
	}
	return nil
}

func (c *epochCounter) Name() string { return "epochs" }

func (c *epochCounter) State() (json.RawMessage, error) { return json.Marshal(c.Epochs) }

func (c *epochCounter) Restore(state json.RawMessage) error {
	c.restored = state
	return json.Unmarshal(state, &c.Epochs)
}

// Hooks see the events OnEvent sees, after it; ErrStop ends the run after
// the epoch's checkpoint; another error fails it.
func TestHooks(t *testing.T) {
	data := folder(t, 8) // 12 training images: 3 steps per epoch
	opt := small(t, data)
	opt.Epochs, opt.SyncCheckpoints = 5, true
	var order []string
	var fromOnEvent, fromHook []Kind
	opt.OnEvent = func(e Event) error {
		fromOnEvent = append(fromOnEvent, e.Kind)
		order = append(order, "onevent")
		return nil
	}
	c := &epochCounter{stopAt: 2}
	opt.Hooks = []Hook{HookFunc(func(e Event) error {
		fromHook = append(fromHook, e.Kind)
		order = append(order, "hook")
		return nil
	}), c}
	res, err := Train(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fromHook, fromOnEvent) || len(fromHook) == 0 || order[0] != "onevent" || order[1] != "hook" {
		t.Errorf("the hook saw %v, OnEvent %v, in the order %v", fromHook, fromOnEvent, order[:min(4, len(order))])
	}
	// Epoch 2 is step 4: the run stops there, saved.
	if res.Reason != Stopped || res.Step != 4 || res.CheckpointStep != 4 {
		t.Errorf("result %+v; want stopped and saved at step 4", res)
	}
	if i := slices.Index(fromOnEvent, Stopping); i < 0 || !slices.Contains(fromOnEvent[i:], Done) {
		t.Errorf("events %v: want Stopping, then Done", fromOnEvent)
	}

	boom := errors.New("boom")
	opt.ModelDir = t.TempDir()
	opt.OnEvent = nil
	opt.Hooks = []Hook{HookFunc(func(e Event) error {
		if e.Kind == Epoch && e.Epoch == 2 {
			return boom
		}
		return nil
	})}
	res, err = Train(context.Background(), opt)
	if !errors.Is(err, boom) || res.Reason != Failed || res.CheckpointStep != 4 {
		t.Errorf("err %v, result %+v; want boom, failed, saved at step 4", err, res)
	}

	opt.Hooks = []Hook{&epochCounter{}, &epochCounter{}}
	var oe *OptionError
	if _, err := Train(context.Background(), opt); !errors.As(err, &oe) || oe.Option != "Hooks" || !strings.Contains(err.Error(), "epochs") {
		t.Errorf("two hooks' state under one name: %v", err)
	}
}

// trainerState is the trainer's record in the latest checkpoint in dir.
func trainerState(t *testing.T, dir string) string {
	t.Helper()
	prefix, err := checkpoint.Resolve(dir)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := checkpoint.ReadMetaGraph(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return string(network.InfoFromMeta(meta).TrainerState)
}

// A StateHook's state is in every checkpoint and back on resume.
func TestStateHookResumes(t *testing.T) {
	opt := small(t, folder(t, 8))
	opt.Epochs = 3
	first := &epochCounter{}
	opt.Hooks = []Hook{first}
	if _, err := Train(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	// The record holds the trainer's own hooks' states beside this one's.
	var st struct{ Hooks map[string]json.RawMessage }
	if err := json.Unmarshal([]byte(trainerState(t, opt.ModelDir)), &st); err != nil {
		t.Fatal(err)
	}
	if got := string(st.Hooks["epochs"]); got != "3" {
		t.Errorf("the checkpoint's trainer state holds %q for the hook, want 3 (all: %v)", got, st.Hooks)
	}
	second := &epochCounter{}
	opt.Hooks, opt.Resume, opt.Epochs = []Hook{second}, true, 5
	if _, err := Train(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	if string(second.restored) != "3" || second.Epochs != 5 {
		t.Errorf("resumed hook: restored %q, counted %d; want 3, then 5", second.restored, second.Epochs)
	}
}
