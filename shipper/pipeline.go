package shipper

import (
	"context"
	"sync"
	"time"
)

// pipeline compresses and publishes batches on a goroutine of its own, so that reading and
// checking the next lines overlaps with compressing the previous ones. It owns the publisher.
// Errors are sticky: after the first, batches are dropped and every call returns it. submit
// and flush are called from one goroutine (the reader's).
type pipeline struct {
	s    *Shipper
	pub  *publisher
	jobs chan job
	free chan *batch
	done chan struct{}

	mu  sync.Mutex
	err error
}

type job struct {
	b     *batch     // nil: only flush
	flush chan error // non-nil: reply once everything before is acknowledged
}

// pipelineDepth is how many batches can be filled or waiting while one is compressed.
const pipelineDepth = 3

func newPipeline(ctx context.Context, s *Shipper, pub *publisher) *pipeline {
	p := &pipeline{s: s, pub: pub, jobs: make(chan job, pipelineDepth), free: make(chan *batch, pipelineDepth+1), done: make(chan struct{})}
	for i := 0; i < pipelineDepth+1; i++ {
		p.free <- &batch{raw: make([]byte, 0, s.cfg.MaxBatchBytes)}
	}
	go p.run(ctx)
	return p
}

func (p *pipeline) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

func (p *pipeline) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *pipeline) run(ctx context.Context) {
	defer close(p.done)
	for j := range p.jobs {
		if j.b != nil {
			if p.failed() == nil {
				var epoch uint64
				if p.s.cfg.Epoch != nil {
					epoch = p.s.cfg.Epoch()
				}
				sb := j.b.seal(p.s.enc, p.s.metaID.Load(), epoch, p.s.cfg.Source)
				if err := p.pub.publish(ctx, sb); err != nil {
					p.fail(err)
				} else if err := p.pub.reap(); err != nil {
					p.fail(err)
				}
			}
			j.b.reset()
			p.free <- j.b
		}
		if j.flush != nil {
			if p.failed() == nil {
				if err := p.pub.waitAll(ctx); err != nil {
					p.fail(err)
				}
			}
			j.flush <- p.failed()
		}
	}
	// Let what was sent settle, so that the next session reads a tail that includes it.
	settle, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(p.pub.inflight) > 0 {
		_ = p.pub.waitOne(settle)
	}
}

// batch returns an empty batch to fill.
func (p *pipeline) batch() *batch { return <-p.free }

// submit hands a filled batch over and returns the pipeline's error, if any.
func (p *pipeline) submit(b *batch) error {
	p.jobs <- job{b: b}
	return p.failed()
}

// flush waits until every batch submitted is acknowledged.
func (p *pipeline) flush() error {
	reply := make(chan error, 1)
	p.jobs <- job{flush: reply}
	return <-reply
}

// close stops the pipeline once what was submitted has settled.
func (p *pipeline) close() {
	close(p.jobs)
	<-p.done
}
