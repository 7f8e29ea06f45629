package fetch

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cavaliergopher/grab/v3"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// reporter shows what Download is doing. Methods are called from the
// download workers concurrently.
type reporter interface {
	begin(a Artifact, r *grab.Response, resumedFrom int64) // a transfer attempt started
	finish(a Artifact, received int64)                     // the attempt ended
	end(a Artifact, how string, err error)                 // the artifact is done: downloaded, cached, failed
	note(msg string)
	close()
}

func newReporter(o Options, arts []Artifact) reporter {
	switch {
	case o.Progress == nil:
		return nopReporter{}
	case o.bars || !o.PlainProgress && isTerminal(o.Progress):
		return newBarReporter(o.Progress, len(arts))
	default:
		return newLineReporter(o.Progress, len(arts), o.ProgressInterval)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

type nopReporter struct{}

func (nopReporter) begin(Artifact, *grab.Response, int64) {}
func (nopReporter) finish(Artifact, int64)                {}
func (nopReporter) end(Artifact, string, error)           {}
func (nopReporter) note(string)                           {}
func (nopReporter) close()                                {}

// lineReporter writes plain lines: one summary line per interval while
// transfers run, and one line per finished artifact. Good for logs and CI,
// where redrawn bars turn into noise.
type lineReporter struct {
	w     io.Writer
	total int
	start time.Time

	mu        sync.Mutex
	active    map[string]transfer // by artifact label (unique within a Download)
	received  int64               // by finished attempts
	done      map[string]int
	lastBytes int64
	lastTick  time.Time
	stop      chan struct{}
	stopped   sync.WaitGroup
}

type transfer struct {
	resp *grab.Response
	pre  int64 // bytes already on disk when the attempt started
}

func newLineReporter(w io.Writer, total int, every time.Duration) *lineReporter {
	r := &lineReporter{w: w, total: total, start: time.Now(), active: map[string]transfer{},
		done: map[string]int{}, stop: make(chan struct{}), lastTick: time.Now()}
	r.stopped.Add(1)
	go func() {
		defer r.stopped.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.tick()
			case <-r.stop:
				return
			}
		}
	}()
	return r
}

func (r *lineReporter) begin(a Artifact, resp *grab.Response, pre int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active[a.label()] = transfer{resp: resp, pre: pre}
}

func (r *lineReporter) finish(a Artifact, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.active, a.label())
	r.received += n
}

func (r *lineReporter) end(a Artifact, how string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done[how]++
	n := r.done["downloaded"] + r.done["cached"] + r.done["failed"]
	if err != nil {
		fmt.Fprintf(r.w, "fetch: [%d/%d] FAILED %v\n", n, r.total, err)
		return
	}
	fmt.Fprintf(r.w, "fetch: [%d/%d] %s %s (%s)\n", n, r.total, how, a.label(), humanBytes(a.Size))
}

func (r *lineReporter) note(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.w, "fetch: %s\n", msg)
}

// tick prints the summary line: bytes so far, rate since the last tick, and
// each running transfer's share.
func (r *lineReporter) tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.active) == 0 {
		return
	}
	got := r.received
	var parts []string
	for name, t := range r.active {
		resp := t.resp
		cur := resp.BytesComplete()
		if resp.DidResume {
			got += cur - t.pre
		} else {
			got += cur
		}
		if size := resp.Size(); size > 0 {
			parts = append(parts, fmt.Sprintf("%s %d%% of %s", name, int(100*float64(cur)/float64(size)), humanBytes(size)))
		} else {
			parts = append(parts, fmt.Sprintf("%s %s", name, humanBytes(cur)))
		}
	}
	sort.Strings(parts)
	now := time.Now()
	rate := float64(got-r.lastBytes) / now.Sub(r.lastTick).Seconds()
	r.lastBytes, r.lastTick = got, now
	n := r.done["downloaded"] + r.done["cached"] + r.done["failed"]
	fmt.Fprintf(r.w, "fetch: [%d/%d] %s received, %s/s; %s\n", n, r.total, humanBytes(got),
		humanBytes(int64(rate)), strings.Join(parts, ", "))
}

func (r *lineReporter) close() {
	close(r.stop)
	r.stopped.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	el := time.Since(r.start)
	fmt.Fprintf(r.w, "fetch: %d artifacts: %d downloaded, %d cached, %d failed; %s received in %s\n",
		r.total, r.done["downloaded"], r.done["cached"], r.done["failed"], humanBytes(r.received),
		el.Round(time.Millisecond))
}

// barReporter draws one mpb bar per running transfer on a terminal.
type barReporter struct {
	p     *mpb.Progress
	total int

	mu   sync.Mutex
	bars map[string]*bar
	stop chan struct{}
	wg   sync.WaitGroup
}

type bar struct {
	b    *mpb.Bar
	resp *grab.Response
}

func newBarReporter(w io.Writer, total int) *barReporter {
	r := &barReporter{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(30), mpb.WithAutoRefresh()), total: total,
		bars: map[string]*bar{}, stop: make(chan struct{})}
	r.wg.Add(1)
	go func() { // grab counts bytes itself; copy its counters into the bars
		defer r.wg.Done()
		t := time.NewTicker(150 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.mu.Lock()
				for _, b := range r.bars {
					if s := b.resp.Size(); s > 0 {
						b.b.SetTotal(s, false)
					}
					b.b.SetCurrent(b.resp.BytesComplete())
				}
				r.mu.Unlock()
			case <-r.stop:
				return
			}
		}
	}()
	return r
}

func (r *barReporter) begin(a Artifact, resp *grab.Response, _ int64) {
	name := a.label()
	if len(name) > 30 {
		name = name[:27] + "..."
	}
	// Total 0: a known total would make mpb complete the bar only when a
	// poll happens to see the last byte; finish completes it instead.
	b := r.p.AddBar(0,
		mpb.PrependDecorators(decor.Name(name, decor.WC{W: 31, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f"),
			decor.Name(" "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")))
	r.mu.Lock()
	r.bars[a.label()] = &bar{b: b, resp: resp}
	r.mu.Unlock()
}

func (r *barReporter) finish(a Artifact, _ int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.bars[a.label()]; ok {
		if b.resp.Err() == nil {
			b.b.SetCurrent(b.resp.BytesComplete())
			b.b.SetTotal(-1, true)
		} else {
			b.b.Abort(true)
		}
		delete(r.bars, a.label())
	}
}

func (r *barReporter) end(a Artifact, how string, err error) {
	if err != nil {
		fmt.Fprintf(r.p, "fetch: FAILED %v\n", err)
	} else if how == "cached" {
		fmt.Fprintf(r.p, "fetch: cached %s\n", a.label())
	}
}

func (r *barReporter) note(msg string) { fmt.Fprintf(r.p, "fetch: %s\n", msg) }

func (r *barReporter) close() {
	close(r.stop)
	r.wg.Wait()
	r.p.Wait()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
