package bake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Step is one stage of a bake. Run does the work and may register undo
// functions on the State; they run in reverse order once the pipeline
// fails or is cancelled, so each step owns the cleanup of its own work.
type Step struct {
	Name string
	Run  func(ctx context.Context, s *State) error
}

// runSteps runs steps in order, recording their times in s. On the first
// error (or a cancelled ctx) it runs every registered undo, last first, and
// returns the error joined with any undo failures. On success it runs the
// undos registered with always=true (temp dirs) and keeps the rest.
func runSteps(ctx context.Context, s *State, steps []Step, progress io.Writer) (err error) {
	defer func() {
		err = errors.Join(err, s.unwind(err != nil))
	}()
	for _, st := range steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", st.Name, err)
		}
		fmt.Fprintf(progress, "==> %s\n", st.Name)
		start := time.Now()
		err := st.Run(ctx, s)
		d := time.Since(start)
		s.Manifest.Steps = append(s.Manifest.Steps, StepTime{Name: st.Name, Seconds: d.Seconds()})
		if err != nil {
			return fmt.Errorf("%s: %w", st.Name, err)
		}
		fmt.Fprintf(progress, "    %s done in %s\n", st.Name, d.Round(100*time.Millisecond))
	}
	return nil
}

type undo struct {
	name   string
	always bool
	fn     func() error
}

// OnFail registers fn to undo a step's work if a later step fails.
func (s *State) OnFail(name string, fn func() error) {
	s.undos = append(s.undos, undo{name: name, fn: fn})
}

// Always registers fn to run when the pipeline ends, whatever the outcome
// (unless Keep is set and the pipeline failed: then the work stays for a look).
func (s *State) Always(name string, fn func() error) {
	s.undos = append(s.undos, undo{name: name, always: true, fn: fn})
}

func (s *State) unwind(failed bool) error {
	var errs []error
	for i := len(s.undos) - 1; i >= 0; i-- {
		u := s.undos[i]
		if !failed && !u.always {
			continue
		}
		if failed && u.always && s.Opts.Keep {
			fmt.Fprintf(s.progress(), "    --keep: not removing %s\n", u.name)
			continue
		}
		if err := u.fn(); err != nil {
			errs = append(errs, fmt.Errorf("cleanup %s: %w", u.name, err))
		}
	}
	s.undos = nil
	return errors.Join(errs...)
}
