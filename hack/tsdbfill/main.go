// tsdbfill writes Prometheus TSDB blocks of constant-valued series straight from a list of
// series, for benchmarks whose history is too long to backfill through OpenMetrics text
// (30 days of 10,000 pods' kube-state-metrics and dcgm-exporter series are about 2.2 billion
// samples, about 220 GB of text). It writes what `promtool tsdb create-blocks-from
// openmetrics` would for the same samples, with Prometheus' own tsdb package.
//
// Input (stdin): one series a line, `value<TAB>name=value<TAB>name=value...`, __name__
// among the labels. A value `base~spread` varies from sample to sample: a whole number in
// base-spread..base+spread, the same for the same labels and time on every run (as a
// GPU's utilisation does; XOR chunks of varying values are larger and slower to read than
// those of a constant). Every series gets a sample every -step seconds from -start to -end
// (unix seconds, both included), cut into blocks of -block, written under -out.
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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
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

func parse(r io.Reader) ([]series, error) {
	var out []series
	scan := bufio.NewScanner(r)
	scan.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; scan.Scan(); n++ {
		fields := strings.Split(scan.Text(), "\t")
		if len(fields) < 2 {
			return nil, fmt.Errorf("line %d: want value<TAB>name=value..., got %q", n, scan.Text())
		}
		base, spread, varies := strings.Cut(fields[0], "~")
		value, err := strconv.ParseFloat(base, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: value: %w", n, err)
		}
		var by int64
		if varies {
			if by, err = strconv.ParseInt(spread, 10, 64); err != nil || by < 0 {
				return nil, fmt.Errorf("line %d: want base~spread with a whole spread >= 0, got %q", n, fields[0])
			}
		}
		b := labels.NewScratchBuilder(len(fields) - 1)
		for _, f := range fields[1:] {
			name, v, ok := strings.Cut(f, "=")
			if !ok || name == "" {
				return nil, fmt.Errorf("line %d: want name=value, got %q", n, f)
			}
			b.Add(name, v)
		}
		b.Sort()
		out = append(out, series{b.Labels(), value, by})
	}
	return out, scan.Err()
}

// block writes one block of every series' samples at start, start+step, ... < end.
func block(dir string, all []series, start, end, step int64) error {
	// The writer refuses samples more than half its block size older than the newest one
	// appended; series are appended one after another, so (as promtool does) it is told
	// the block is twice as long. The block written still spans start..end only.
	w, err := tsdb.NewBlockWriter(slog.New(slog.DiscardHandler), dir, 2*(end-start))
	if err != nil {
		return err
	}
	defer w.Close()
	ctx := context.Background()
	for i := 0; i < len(all); i += 200 {
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

func run() error {
	start := flag.Int64("start", 0, "first sample, unix seconds")
	end := flag.Int64("end", 0, "last sample, unix seconds")
	step := flag.Duration("step", time.Minute, "between samples")
	size := flag.Duration("block", 24*time.Hour, "time a block covers")
	out := flag.String("out", "", "the TSDB directory to write blocks into")
	workers := flag.Int("workers", 2, "blocks written at once")
	flag.Parse()
	if *out == "" || *end < *start || *step <= 0 || *size < *step || *size%*step != 0 {
		return errors.New("want -out DIR -start S -end E (E >= S), a positive -step and a -block that is a multiple of -step")
	}
	all, err := parse(os.Stdin)
	if err != nil {
		return err
	}
	stepMs, sizeMs := step.Milliseconds(), size.Milliseconds()
	first, last := *start*1000, *end*1000+1
	jobs := make(chan int64)
	errs := make(chan error, *workers)
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for from := range jobs {
				if err := block(*out, all, from, min(from+sizeMs, last), stepMs); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	began := time.Now()
	for from := first; from < last; from += sizeMs {
		select {
		case jobs <- from:
		case err := <-errs:
			close(jobs)
			return err
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	points := (last - first + stepMs - 1) / stepMs
	fmt.Fprintf(os.Stderr, "tsdbfill: %d series x %d points in %s\n", len(all), points, time.Since(began).Round(time.Second))
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tsdbfill:", err)
		os.Exit(1)
	}
}
