package state

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// groupCommit shares read-write transactions, and so their fsyncs, between
// concurrent writers without making anyone wait for company.
//
// A writer queues its function and then waits for one of two things: its
// result, or the leader token. Whoever holds the token takes everything
// queued so far, runs it in one transaction, commits (bbolt syncs the data
// pages, then the meta page) and only then hands every writer of the batch
// its result. The writers that queued while that commit was syncing make
// the next batch, so a batch grows with the load: a lone writer commits at
// once, and under a steady load the leader waits a little for the writers
// the last commit freed (see lead), so 8 concurrent callers share one
// transaction. bbolt's DB.Batch instead starts a batch on a timer
// (MaxBatchDelay) and lets the first writer through alone, which left
// about 4 writers per transaction with 8 callers.
//
// Durability: a writer gets nil only after the transaction holding its
// writes has been committed and synced; a writer whose batch failed to
// commit gets that error (nothing of the batch is on disk, bbolt rolled it
// back). A crash mid-commit loses the whole batch, none of whose writers
// has been answered, so nothing acknowledged is lost.
//
// A function that returns an error rolls the shared transaction back: it
// is taken out of the batch and run again alone (its error is then its own,
// not caused by another's writes), and the rest of the batch is run again.
// Functions may therefore run more than once and must only set, never
// accumulate, what they report (as with DB.Batch). A panic in a function
// is handed back to its writer and raised there.
type groupCommit struct {
	db     *bolt.DB
	token  chan struct{} // holds one value while no batch is running
	queued chan *groupCall
	// writers counts the calls of do not yet returned (tests wait on it).
	writers atomic.Int32
	// txs and calls count committed transactions and the writes they
	// held (calls/txs is the batch size the load made).
	txs, calls atomic.Uint64
	// target is how many writers were in do when the last batch
	// committed (its own and those queued meanwhile): in a steady load
	// they are back soon, and the next leader waits for them (see lead).
	// arrived is signalled at each queueing, so a waiting leader wakes;
	// lastTx is the duration of the last commit, ns.
	target  atomic.Int32
	arrived chan struct{}
	lastTx  atomic.Int64
}

// maxWait bounds how long a leader waits for company.
const maxWait = 2 * time.Millisecond

type groupCall struct {
	fn   func(*bolt.Tx) error
	done chan error // buffered 1: the leader never blocks on it
}

// groupPanic carries a panic from a writer's function, run by a leader,
// back to the writer.
type groupPanic struct{ v any }

func (p groupPanic) Error() string { return fmt.Sprint("panic in write: ", p.v) }

// maxGroup bounds one transaction's writers: a larger batch holds the
// write lock longer, and a dirty page set that grows past memory is no
// better for being shared.
const maxGroup = 256

func newGroupCommit(db *bolt.DB) *groupCommit {
	g := &groupCommit{db: db, token: make(chan struct{}, 1), queued: make(chan *groupCall, maxGroup), arrived: make(chan struct{}, 1)}
	g.token <- struct{}{}
	return g
}

// do runs fn in a shared read-write transaction and returns once that
// transaction is committed (and synced) or has failed.
func (g *groupCommit) do(fn func(*bolt.Tx) error) error {
	g.writers.Add(1)
	defer g.writers.Add(-1)
	c := &groupCall{fn: fn, done: make(chan error, 1)}
	// A full queue blocks here until a leader drains it; the leader
	// token is then certainly held by someone who will.
	g.queued <- c
	select {
	case g.arrived <- struct{}{}:
	default:
	}
	for {
		select {
		case err := <-c.done:
			return c.result(err)
		case <-g.token:
		}
		// Leader. Our call may have been committed by the previous
		// leader between its drain and the token's return.
		select {
		case err := <-c.done:
			g.token <- struct{}{}
			return c.result(err)
		default:
		}
		g.lead()
		g.token <- struct{}{}
		// Our call was queued before we took the token, so the batch
		// just run held it... unless the queue held more than maxGroup:
		// then wait again (for the result, or to lead the next batch).
	}
}

func (c *groupCall) result(err error) error {
	if p, ok := err.(groupPanic); ok {
		panic(p.v)
	}
	return err
}

// lead waits for company, drains the queue (up to maxGroup calls) and
// commits them.
//
// The wait: callers answered together by one commit, in a steady load,
// come back together a little later (a till's next sale, a load of
// concurrent POS requests). Committing as soon as the first is back would
// leave the others to the next commit, and concurrent callers would settle
// into two alternating half batches, each paying the commit's two fsyncs.
// So the leader waits until as many writers are queued as were in flight
// at the last commit, but never longer than half the last commit took
// (past that the half batches are the better deal) nor maxWait. A lone
// writer has nobody to wait for and commits at once.
func (g *groupCommit) lead() {
	target := int(min(g.target.Load(), maxGroup))
	if len(g.queued) < target {
		wait := min(time.Duration(g.lastTx.Load())/2, maxWait)
		timer := time.NewTimer(wait)
	wait:
		for len(g.queued) < target {
			select {
			case <-g.arrived:
			case <-timer.C:
				break wait
			}
		}
		timer.Stop()
	}
	batch := make([]*groupCall, 0, 16)
drain:
	for len(batch) < maxGroup {
		select {
		case c := <-g.queued:
			batch = append(batch, c)
		default:
			break drain
		}
	}
	for len(batch) > 0 {
		failed := -1
		began := time.Now()
		err := g.db.Update(func(tx *bolt.Tx) error {
			for i, c := range batch {
				if err := safely(c.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			// Committed and synced, or the commit failed for all.
			if err == nil {
				g.lastTx.Store(int64(time.Since(began)))
				g.target.Store(g.writers.Load())
				g.txs.Add(1)
				g.calls.Add(uint64(len(batch)))
			}
			for _, c := range batch {
				c.done <- err
			}
			return
		}
		c := batch[failed]
		batch = slices.Delete(batch, failed, failed+1)
		if _, ok := err.(groupPanic); ok {
			c.done <- err
			continue
		}
		c.done <- g.db.Update(func(tx *bolt.Tx) error { return safely(c.fn, tx) })
	}
}

// safely runs fn, turning a panic into a groupPanic.
func safely(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = groupPanic{p}
		}
	}()
	return fn(tx)
}
