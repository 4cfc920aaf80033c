// tsdbfill writes Prometheus TSDB blocks straight from a list of series, for benchmarks whose
// history is too long to backfill through OpenMetrics text (30 days of the catch-up bench's
// 91,000 kube-state-metrics and dcgm-exporter series are 3.9 billion samples, about 735 GB
// of text). It writes what `promtool tsdb create-blocks-from openmetrics` would for the same
// samples, with Prometheus' own tsdb package (tests/integration/test_tsdbfill.py).
//
// Input (stdin): one series a line, `value<TAB>name=value<TAB>name=value...`, __name__
// among the labels; no two lines with the same labels. A value `base~spread` (whole
// numbers) varies from sample to sample within base-spread..base+spread, the same for the
// same labels and time on every run (as a GPU's utilisation does; XOR chunks of varying
// values are larger and slower to read than those of a constant). Every series gets a
// sample every -step from -start to -end (unix seconds, both included), cut into blocks of
// -block, written into -out, which must not exist yet: on any failure (or SIGINT/SIGTERM)
// it is removed again, so a run writes all its blocks or none.
//
// Memory: a block's samples are held while it is written, about 2.4 GB per worker for a
// day of the bench's 91,000 series at one a minute.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

type series struct {
	labels labels.Labels
	value  float64
	spread int64
}

// at is the series' value at t (milliseconds).
func (s series) at(t int64) float64 {
	if s.spread == 0 {
		return s.value
	}
	h := (uint64(t)/1000)*0x9E3779B97F4A7C15 ^ s.labels.Hash()*0xC2B2AE3D27D4EB4F
	h ^= h >> 31
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 29
	return s.value + float64(int64(h%uint64(2*s.spread+1))-s.spread)
}

func parseValue(field string) (float64, int64, error) {
	base, spread, varies := strings.Cut(field, "~")
	if !varies {
		value, err := strconv.ParseFloat(base, 64)
		return value, 0, err
	}
	value, err := strconv.ParseInt(base, 10, 64)
	by, err2 := strconv.ParseInt(spread, 10, 64)
	if err != nil || err2 != nil || by < 0 {
		return 0, 0, fmt.Errorf("want base~spread, whole numbers, spread >= 0, got %q", field)
	}
	return float64(value), by, nil
}

func parseLine(text string) (series, error) {
	fields := strings.Split(text, "\t")
	if len(fields) < 2 {
		return series{}, fmt.Errorf("want value<TAB>name=value..., got %.80q", text)
	}
	value, spread, err := parseValue(fields[0])
	if err != nil {
		return series{}, fmt.Errorf("value: %w", err)
	}
	b := labels.NewScratchBuilder(len(fields) - 1)
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		name, v, ok := strings.Cut(f, "=")
		if !ok || !labelName.MatchString(name) {
			return series{}, fmt.Errorf("want name=value with a Prometheus label name, got %.80q", f)
		}
		if seen[name] {
			return series{}, fmt.Errorf("label %s given twice", name)
		}
		seen[name] = true
		b.Add(name, v)
	}
	b.Sort()
	s := series{b.Labels(), value, spread}
	if !metricName.MatchString(s.labels.Get(labels.MetricName)) {
		return series{}, fmt.Errorf("want __name__=<a Prometheus metric name>, got %.80q", s.labels.Get(labels.MetricName))
	}
	return s, nil
}

func parse(r io.Reader) ([]series, error) {
	var out []series
	first := map[string]int{} // a series' labels -> the line that gave them
	scan := bufio.NewScanner(r)
	scan.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for scan.Scan() {
		n++
		s, err := parseLine(strings.TrimSuffix(scan.Text(), "\r"))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		key := s.labels.String()
		if line, dup := first[key]; dup {
			return nil, fmt.Errorf("line %d: the same series as line %d: %s", n, line, key)
		}
		first[key] = n
		out = append(out, s)
	}
	if err := scan.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return out, nil
}

// block writes one block of every series' samples at start, start+step, ... < end.
func block(ctx context.Context, dir string, all []series, start, end, step int64) error {
	// The writer refuses samples more than half its block size older than the newest one
	// appended; series are appended one after another, so (as promtool does) it is told
	// the block is twice as long. The block written still spans start..end only.
	w, err := tsdb.NewBlockWriter(slog.New(slog.DiscardHandler), dir, 2*(end-start))
	if err != nil {
		return err
	}
	defer w.Close() // removes the writer's head directory under $TMPDIR
	for i := 0; i < len(all); i += 200 {
		if err := ctx.Err(); err != nil {
			return err
		}
		app := w.Appender(ctx)
		for _, s := range all[i:min(i+200, len(all))] {
			var ref storage.SeriesRef // the first append finds the series, the rest reuse it
			for t := start; t < end; t += step {
				if ref, err = app.Append(ref, s.labels, t, s.at(t)); err != nil {
					return fmt.Errorf("append %s at %d: %w", s.labels, t, err)
				}
			}
		}
		if err := app.Commit(); err != nil {
			return err
		}
	}
	_, err = w.Flush(ctx)
	return err
}

type options struct {
	start, end, step, size int64 // milliseconds
	out                    string
	workers                int
}

func flags() (options, error) {
	start := flag.Int64("start", 0, "first sample, unix seconds (required)")
	end := flag.Int64("end", 0, "last sample, unix seconds (required)")
	step := flag.Duration("step", time.Minute, "between samples, whole seconds")
	size := flag.Duration("block", 24*time.Hour, "time a block covers, a multiple of -step")
	out := flag.String("out", "", "the TSDB directory to create (must not exist)")
	workers := flag.Int("workers", 2, "blocks written at once (each holds its block in memory)")
	flag.Parse()
	o := options{*start * 1000, *end * 1000, step.Milliseconds(), size.Milliseconds(), *out, *workers}
	switch {
	case o.out == "":
		return o, errors.New("-out is required")
	case *start <= 0 || *end < *start:
		return o, errors.New("want -start S -end E in unix seconds, 0 < S <= E")
	case *step < time.Second || *step%time.Second != 0:
		return o, errors.New("-step must be a whole number of seconds")
	case *size < *step || *size%*step != 0:
		return o, errors.New("-block must be a multiple of -step")
	case o.workers < 1:
		return o, errors.New("-workers must be at least 1")
	}
	if _, err := os.Stat(o.out); !errors.Is(err, os.ErrNotExist) {
		return o, fmt.Errorf("-out %s: must not exist yet (a run writes all its blocks or none)", o.out)
	}
	return o, nil
}

// write writes every block, o.workers at a time; on the first failure the others stop.
func write(ctx context.Context, o options, all []series) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	last := o.end + 1 // blocks are half-open: [min, max)
	jobs := make(chan int64)
	errs := make(chan error, o.workers)
	var wg sync.WaitGroup
	for range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for from := range jobs {
				if err := block(ctx, o.out, all, from, min(from+o.size, last), o.step); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
	for from := o.start; from < last && ctx.Err() == nil; from += o.size {
		select {
		case jobs <- from:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait() // every writer closed: no head directory left behind
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

func run() error {
	o, err := flags()
	if err != nil {
		return err
	}
	all, err := parse(os.Stdin)
	if err != nil {
		return err
	}
	if len(all) == 0 {
		return errors.New("no series on stdin")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	began := time.Now()
	if err := write(ctx, o, all); err != nil {
		return errors.Join(err, os.RemoveAll(o.out))
	}
	points := (o.end-o.start)/o.step + 1
	fmt.Fprintf(os.Stderr, "tsdbfill: %d series x %d points in %s\n", len(all), points, time.Since(began).Round(time.Second))
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tsdbfill:", err)
		os.Exit(1)
	}
}
