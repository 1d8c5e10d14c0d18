// Package enginetest is the seeded simulation of sqlsync: clients and a
// coordinator over an in-memory network that a seeded random source drives
// (mutations, lost and duplicated messages, disconnects, restarts of clients
// and of the coordinator), checking the design's five invariants at every
// quiescent point. Any mutator that implements the todo contract of
// package testmutator can be simulated.
package enginetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/engine"
	"github.com/sqlsync-go/sqlsync/shared/pendinglog"
	"github.com/sqlsync-go/sqlsync/shared/protocol"
	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
	"github.com/sqlsync-go/sqlsync/shared/syncwire"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
	"github.com/sqlsync-go/sqlsync/vfs/memstore"
)

// Run simulates nClients clients and a coordinator for steps steps with the
// given seed. The error says which invariant broke, and at which step.
//
// Besides the todo mutations, the random mix has mutations that fail in
// the ways a mutator's SQL can fail beyond an error (see faults): at COMMIT
// on a deferred foreign key, and by breaking the engine's transaction,
// each sometimes only on replay or only on the coordinator. Every replica
// must keep opening and rebasing through them.
func Run(seed uint64, nClients, steps int, mut engine.Mutator) error {
	_, err := RunDump(seed, nClients, steps, mut)
	return err
}

// RunDump is Run, returning the coordinator's dump (package engine's
// Dump) at the last check too: two mutators that behave alike give the
// same dump for the same seed.
func RunDump(seed uint64, nClients, steps int, mut engine.Mutator) (string, error) {
	var dump string
	err := runSimulation(seed, nClients, steps, faults{mut}, &dump)
	return dump, err
}

// message is what travels on the simulated network.
type message struct {
	push []engine.Mutation // client to coordinator
	diff [][]byte          // coordinator to client: encoded Diff frames
	// stream holds the encoded frames of a streamed diff; with cut, the
	// connection breaks after them, before the stream's end.
	stream   [][]byte
	cut      bool
	rejected *engine.Rejection
}

type simClient struct {
	id      int
	store   *memstore.Store // durable across restarts
	log     *pendinglog.Memory
	eng     *engine.Client
	online  bool
	up      []message // to the coordinator
	down    []message // to the client
	sentLSN uint64    // coordinator side: the LSN this connection has been sent up to
	// resume is the stream the client's Hello asks to go on with; breaking
	// says its connection is to break once the client reads a cut stream.
	resume   *engine.StreamPos
	breaking bool
	created  int // items this client created
	seen     map[string]bool
}

type sim struct {
	r       *rand.Rand
	mut     engine.Mutator
	cstore  *memstore.Store
	coord   *engine.Coordinator
	clients []*simClient
	history []engine.Mutation // the coordinator's order of applied mutations
	acked   map[string]bool   // mutations a client recorded durably
	ids     []string          // item ids any client has used
	quiet   bool              // quiescing: the network loses nothing
}

func runSimulation(seed uint64, nClients, steps int, mut engine.Mutator, dump *string) (err error) {
	ctx := context.Background()
	s := &sim{r: rand.New(rand.NewPCG(seed, 0xdecaf)), mut: mut, cstore: memstore.New(), acked: map[string]bool{}}
	if s.coord, err = engine.OpenCoordinator(ctx, s.cstore, mut, engine.CoordinatorOptions{}); err != nil {
		return err
	}
	defer func() { s.coord.Close() }()
	for i := range nClients {
		c := &simClient{id: i, store: memstore.New(), log: pendinglog.NewMemory(fmt.Sprintf("client%d", i))}
		if c.eng, err = engine.OpenClient(ctx, c.store, c.log, mut); err != nil {
			return err
		}
		defer func() { c.eng.Close() }()
		s.clients = append(s.clients, c)
	}
	for step := range steps {
		if err := s.step(ctx); err != nil {
			return fmt.Errorf("step %d: %w", step, err)
		}
		if step%50 == 49 || step == steps-1 {
			if err := s.quiesce(ctx); err != nil {
				return fmt.Errorf("step %d: quiesce: %w", step, err)
			}
			if *dump, err = s.check(ctx); err != nil {
				return fmt.Errorf("step %d: %w", step, err)
			}
		}
	}
	return nil
}

func (s *sim) step(ctx context.Context) error {
	c := s.clients[s.r.IntN(len(s.clients))]
	switch n := s.r.IntN(100); {
	case n < 40:
		return s.mutate(ctx, c)
	case n < 55:
		return s.serve(ctx)
	case n < 75:
		return s.deliver(ctx, c)
	case n < 82:
		s.disconnect(c)
	case n < 90:
		s.connect(c)
	case n < 94:
		// Resend everything pending, as after a lost acknowledgement.
		if c.online {
			c.up = append(c.up, message{push: c.eng.Pending()})
		}
	case n < 97:
		return s.restartClient(ctx, c)
	default:
		return s.restartCoordinator(ctx)
	}
	return nil
}

func (s *sim) mutate(ctx context.Context, c *simClient) error {
	a := testmutator.Args{}
	var name string
	pick := func() string {
		if len(s.ids) == 0 {
			return "none"
		}
		return s.ids[s.r.IntN(len(s.ids))]
	}
	switch n := s.r.IntN(30); {
	case n >= 22:
		return s.mutateFault(ctx, c, n)
	case n == 20:
		pos := float64(s.r.IntN(100)) / 4
		name, a.ID, a.Position = "move", pick(), &pos
	case n == 21:
		name, a.Title = "retitle", fmt.Sprintf("list %d", s.r.IntN(100))
	case n < 8:
		name, a.ID, a.Title = "add", fmt.Sprintf("c%d-%d", c.id, c.created), fmt.Sprintf("item %d", s.r.IntN(1000))
		c.created++
		s.ids = append(s.ids, a.ID)
	case n < 12:
		name, a.ID, a.Title = "rename", pick(), fmt.Sprintf("renamed %d", s.r.IntN(1000))
	case n < 15:
		name, a.ID = "toggle", pick()
	case n < 18:
		name, a.ID = "delete", pick()
	case n < 19:
		name = "purge"
	default:
		name, a.Message = "fail", "refused on purpose"
	}
	seq, err := c.eng.Mutate(ctx, name, a.Encode())
	if err != nil {
		if name != "add" {
			return nil // rejected locally: the item is unknown here, or on purpose
		}
		return fmt.Errorf("client %d: %s %s: %w", c.id, name, a.ID, err)
	}
	m := engine.Mutation{ClientID: c.eng.ClientID(), Seq: seq}
	s.acked[m.ID()] = true
	// Read your writes.
	switch name {
	case "add", "rename":
		rows, err := c.eng.Query(`SELECT title, deleted FROM items WHERE id = ?`, a.ID)
		if err != nil {
			return err
		}
		if len(rows.Values) != 1 || rows.Values[0][0] != a.Title || rows.Values[0][1] != int64(0) {
			return fmt.Errorf("client %d: read your writes: after %s %s got %v", c.id, name, a.ID, rows.Values)
		}
	}
	if c.online {
		c.up = append(c.up, message{push: []engine.Mutation{{ClientID: m.ClientID, Seq: seq, Name: name, Args: a.Encode()}}})
	}
	return nil
}

// serve delivers every queued message to the coordinator, applies them as one
// group commit, and fans out.
func (s *sim) serve(ctx context.Context) error {
	var batch []engine.Mutation
	for _, c := range s.clients {
		// Deliver a random prefix of each queue: the rest stays in flight.
		n := s.r.IntN(len(c.up) + 1)
		for _, m := range c.up[:n] {
			batch = append(batch, m.push...)
		}
		c.up = c.up[n:]
	}
	res, err := s.coord.Apply(ctx, batch)
	if err != nil {
		return err
	}
	s.history = append(s.history, res.Applied...)
	for _, rej := range res.Rejected {
		for _, c := range s.clients {
			if c.online && c.eng.ClientID() == rej.Mutation.ClientID {
				c.down = append(c.down, message{rejected: &rej})
			}
		}
	}
	return s.fanOut()
}

func (s *sim) fanOut() error {
	for _, c := range s.clients {
		if !c.online || c.breaking || c.sentLSN == s.coord.LSN() {
			continue
		}
		if c.resume != nil || s.r.IntN(4) == 0 {
			if err := s.stream(c); err != nil {
				return err
			}
			continue
		}
		d, err := s.coord.Diff(c.sentLSN)
		if err != nil {
			return err
		}
		// Through the wire format: split over frames of random size, pages
		// the client has a copy of as deltas.
		var frames [][]byte
		for _, f := range syncwire.Frames(d, 1+s.r.IntN(8)) {
			b, err := protocol.Encode(protocol.Frame{Diff: f})
			if err != nil {
				return err
			}
			frames = append(frames, b)
		}
		c.down = append(c.down, message{diff: frames})
		c.sentLSN = d.LSN
	}
	return nil
}

// errCut breaks a stream off in stream.
var errCut = errors.New("the connection breaks")

// stream sends c the diff it lacks as a stream (resuming the one its Hello
// named, if any), in frames of random size; now and then the connection
// breaks after a few of them, and the client reconnects later and resumes.
func (s *sim) stream(c *simClient) error {
	resume := c.resume
	c.resume = nil
	cutAt := -1
	if !s.quiet && s.r.IntN(3) == 0 {
		cutAt = s.r.IntN(4)
	}
	var frames [][]byte
	to, err := s.coord.Stream(c.sentLSN, resume, 1+s.r.IntN(8), func(f engine.StreamFrame) error {
		if len(frames) == cutAt && !f.Last {
			return errCut
		}
		b, err := protocol.Encode(protocol.Frame{Diff: syncwire.StreamFrame(c.sentLSN, f)})
		frames = append(frames, b)
		return err
	})
	switch {
	case errors.Is(err, errCut):
		c.down = append(c.down, message{stream: frames, cut: true})
		c.breaking = true
	case err != nil:
		return err
	default:
		c.down = append(c.down, message{stream: frames})
		c.sentLSN = to
	}
	return nil
}

func (s *sim) deliver(ctx context.Context, c *simClient) error {
	store := c.eng.Database().Store()
	asm := &syncwire.Assembler{Base: store.ReadPage, BaseCount: store.PageCount}
	for _, m := range c.down {
		if m.stream != nil || m.cut {
			// Whole diffs before the stream go first.
			if err := c.eng.Rebase(ctx, asm.Take()...); err != nil {
				return fmt.Errorf("client %d: a replica must always rebase: %w", c.id, err)
			}
			recv, err := syncwire.NewStreamReceiver(c.store, c.store.LSN)
			if err != nil {
				return err
			}
			for _, b := range m.stream {
				f, err := protocol.Decode(b, protocol.DefaultLimits())
				if err != nil {
					return err
				}
				last, _, err := recv.Add(f.Diff)
				if err != nil {
					return fmt.Errorf("client %d: stream frame: %w", c.id, err)
				}
				if last != nil {
					if err := c.eng.ApplyStaged(ctx, *last); err != nil {
						return fmt.Errorf("client %d: a replica must always apply a stream: %w", c.id, err)
					}
				}
			}
			if m.cut {
				s.disconnect(c)
				return nil
			}
			continue
		}
		for _, b := range m.diff {
			f, err := protocol.Decode(b, protocol.DefaultLimits())
			if err != nil {
				return err
			}
			if err := asm.Add(f.Diff); err != nil {
				return err
			}
		}
	}
	c.down = nil
	if err := c.eng.Rebase(ctx, asm.Take()...); err != nil {
		return fmt.Errorf("client %d: a replica must always rebase: %w", c.id, err)
	}
	// A mutation that failed on replay is still pending: the coordinator
	// decides its fate.
	pending := map[uint64]bool{}
	for _, m := range c.eng.Pending() {
		pending[m.Seq] = true
	}
	for _, f := range c.eng.LocalFailures() {
		if !pending[f.Seq] {
			return fmt.Errorf("client %d: local failure of seq %d, which is not pending", c.id, f.Seq)
		}
	}
	return nil
}

func (s *sim) disconnect(c *simClient) {
	c.online, c.up, c.down, c.breaking, c.resume = false, nil, nil, false, nil
}

// connect is the Hello: the coordinator resumes the client from its snapshot
// LSN, and the client resends its pending mutations.
func (s *sim) connect(c *simClient) {
	if c.online {
		return
	}
	c.online = true
	c.sentLSN = c.eng.LSN()
	// A stream the last connection broke off goes on where it stood.
	if recv, err := syncwire.NewStreamReceiver(c.store, c.store.LSN); err == nil {
		if r := recv.Resume(); r != nil {
			c.resume = &engine.StreamPos{Since: r.Since, Begin: r.Begin, After: r.After}
		}
	}
	if p := c.eng.Pending(); len(p) > 0 {
		c.up = append(c.up, message{push: p})
	}
}

func (s *sim) restartClient(ctx context.Context, c *simClient) (err error) {
	s.disconnect(c)
	if err := c.eng.Close(); err != nil {
		return err
	}
	c.eng, err = engine.OpenClient(ctx, c.store, c.log, s.mut)
	if err != nil {
		return fmt.Errorf("client %d: a replica must always open: %w", c.id, err)
	}
	return nil
}

func (s *sim) restartCoordinator(ctx context.Context) (err error) {
	for _, c := range s.clients {
		s.disconnect(c)
	}
	if err := s.coord.Close(); err != nil {
		return err
	}
	s.coord, err = engine.OpenCoordinator(ctx, s.cstore, s.mut, engine.CoordinatorOptions{})
	return err
}

// quiesce connects everyone and runs the network until nothing is in flight
// and nothing is pending.
func (s *sim) quiesce(ctx context.Context) error {
	s.quiet = true
	defer func() { s.quiet = false }()
	for round := 0; ; round++ {
		if round > 10 {
			var states []string
			for _, c := range s.clients {
				states = append(states, fmt.Sprintf("client %d: online %v, at %d, sent %d, %d pending, breaking %v, resume %v, %d down", c.id, c.online, c.eng.LSN(), c.sentLSN, c.eng.PendingCount(), c.breaking, c.resume, len(c.down)))
			}
			return fmt.Errorf("no quiescence after %d rounds (coordinator at %d; %s)", round, s.coord.LSN(), strings.Join(states, "; "))
		}
		// A client whose connection broke before (a cut stream it read
		// only now) reconnects.
		for _, c := range s.clients {
			s.connect(c)
		}
		var batch []engine.Mutation
		for _, c := range s.clients {
			for _, m := range c.up {
				batch = append(batch, m.push...)
			}
			c.up = nil
		}
		res, err := s.coord.Apply(ctx, batch)
		if err != nil {
			return err
		}
		if len(res.Gaps) > 0 {
			return fmt.Errorf("seq gaps: %v", res.Gaps)
		}
		s.history = append(s.history, res.Applied...)
		if err := s.fanOut(); err != nil {
			return err
		}
		busy := false
		for _, c := range s.clients {
			if err := s.deliver(ctx, c); err != nil {
				return err
			}
			if c.eng.PendingCount() > 0 {
				busy = true
				c.up = append(c.up, message{push: c.eng.Pending()})
			}
			// A stream cut before quiescing broke the connection just now:
			// another round reconnects it and brings it up to date.
			busy = busy || !c.online
		}
		if !busy {
			return nil
		}
	}
}

// check checks the invariants and returns the coordinator's dump.
func (s *sim) check(ctx context.Context) (string, error) {
	// Convergence: byte-identical files, nothing local.
	want, err := s.coord.Database().Bytes()
	if err != nil {
		return "", err
	}
	for _, c := range s.clients {
		got, err := c.eng.Database().Bytes()
		if err != nil {
			return "", err
		}
		if !bytes.Equal(got, want) {
			return "", fmt.Errorf("convergence: client %d differs from the coordinator (%d vs %d bytes)", c.id, len(got), len(want))
		}
		if c.eng.Database().HasLocal() {
			return "", fmt.Errorf("convergence: client %d has a local layer with nothing pending", c.id)
		}
		if err := integrity(c.eng.Query); err != nil {
			return "", fmt.Errorf("client %d: %w", c.id, err)
		}
	}
	if err := integrity(s.coord.Query); err != nil {
		return "", fmt.Errorf("coordinator: %w", err)
	}
	// Exactly once: every durably recorded mutation is in the order once.
	count := map[string]int{}
	for _, m := range s.history {
		count[m.ID()]++
	}
	for id, n := range count {
		if n != 1 {
			return "", fmt.Errorf("exactly once: %s applied %d times", id, n)
		}
		if !s.acked[id] {
			return "", fmt.Errorf("exactly once: %s applied but never recorded", id)
		}
	}
	for id := range s.acked {
		if count[id] != 1 {
			return "", fmt.Errorf("exactly once: %s recorded but applied %d times", id, count[id])
		}
	}
	// Serial truth: replaying the order on an empty document gives the same
	// database.
	fresh, err := engine.OpenCoordinator(ctx, memstore.New(), s.mut, engine.CoordinatorOptions{})
	if err != nil {
		return "", err
	}
	defer fresh.Close()
	for _, m := range s.history {
		if _, err := fresh.Apply(ctx, []engine.Mutation{m}); err != nil {
			return "", err
		}
	}
	var a, b strings.Builder
	if err := s.coord.Dump(&a); err != nil {
		return "", err
	}
	if err := fresh.Dump(&b); err != nil {
		return "", err
	}
	if a.String() != b.String() {
		return "", fmt.Errorf("serial truth: coordinator\n%s\nreplay\n%s", a.String(), b.String())
	}
	return a.String(), nil
}

func integrity(query func(string, ...any) (engine.Rows, error)) error {
	rows, err := query(`PRAGMA integrity_check`)
	if err != nil {
		return err
	}
	if len(rows.Values) != 1 || rows.Values[0][0] != "ok" {
		return fmt.Errorf("integrity_check: %v", rows.Values)
	}
	return nil
}

// mutateFault runs one of the faults mutations (n in 22..29 picks which).
func (s *sim) mutateFault(ctx context.Context, c *simClient, n int) error {
	var name string
	var a faultArgs
	parent := func() string { return fmt.Sprintf("p%d", s.r.IntN(4)) }
	switch n {
	case 22, 23:
		name, a.ID = "parent", parent()
	case 24:
		name, a.ID = "unparent", parent()
	case 25, 26:
		name, a.ID = "child", parent()
	case 27:
		name = "arm"
	case 28:
		name = "disarm"
	default:
		name, a.ID = "tripwire", fmt.Sprintf("c%d-t%d", c.id, s.r.IntN(1000))
	}
	args := a.encode()
	seq, err := c.eng.Mutate(ctx, name, args)
	if err != nil {
		var rej *engine.RejectedError
		if !errors.As(err, &rej) {
			return fmt.Errorf("client %d: %s %s: %w", c.id, name, a.ID, err)
		}
		// Rejected locally: it must leave no trace.
		for _, m := range c.eng.Pending() {
			if m.Seq >= rej.Seq {
				return fmt.Errorf("client %d: rejected %s seq %d is pending", c.id, name, rej.Seq)
			}
		}
		return nil
	}
	m := engine.Mutation{ClientID: c.eng.ClientID(), Seq: seq, Name: name, Args: args}
	s.acked[m.ID()] = true
	if c.online {
		c.up = append(c.up, message{push: []engine.Mutation{m}})
	}
	return nil
}

// faults is a mutator plus mutations that fail beyond returning an error,
// over tables of their own:
//
//	parent   {id}  insert a parent row
//	unparent {id}  delete a parent row and its children
//	child    {id}  insert a child of parent id, whose foreign key is checked
//	               at COMMIT: it fails there if the parent is gone, which
//	               may be only on replay or only on the coordinator
//	arm, disarm    set or clear the tripwire
//	tripwire {id}  insert a parent row, or, while the tripwire is set, end
//	               the engine's transaction as an interrupted write does
type faults struct{ engine.Mutator }

type faultArgs struct {
	ID string `json:"id,omitempty"`
}

func (a faultArgs) encode() []byte {
	b, _ := json.Marshal(a)
	return b
}

func (f faults) Migrate(ctx context.Context, conn *sqlite3.Conn) error {
	if err := f.Mutator.Migrate(ctx, conn); err != nil {
		return err
	}
	return conn.Exec(`CREATE TABLE IF NOT EXISTS sim_parent(id TEXT PRIMARY KEY NOT NULL);
		CREATE TABLE IF NOT EXISTS sim_child(id INTEGER PRIMARY KEY,
			pid TEXT NOT NULL REFERENCES sim_parent(id) DEFERRABLE INITIALLY DEFERRED);
		CREATE TABLE IF NOT EXISTS sim_wire(id INTEGER PRIMARY KEY CHECK (id = 1))`)
}

func (f faults) Mutate(ctx context.Context, conn *sqlite3.Conn, name string, raw []byte) error {
	var a faultArgs
	switch name {
	case "parent", "unparent", "child", "arm", "disarm", "tripwire":
		if err := json.Unmarshal(raw, &a); err != nil {
			return fmt.Errorf("bad args: %w", err)
		}
	default:
		return f.Mutator.Mutate(ctx, conn, name, raw)
	}
	switch name {
	case "parent":
		return sqlrows.Exec(conn, `INSERT OR IGNORE INTO sim_parent(id) VALUES (?)`, a.ID)
	case "unparent":
		if err := sqlrows.Exec(conn, `DELETE FROM sim_child WHERE pid = ?`, a.ID); err != nil {
			return err
		}
		return sqlrows.Exec(conn, `DELETE FROM sim_parent WHERE id = ?`, a.ID)
	case "child":
		return sqlrows.Exec(conn, `INSERT INTO sim_child(pid) VALUES (?)`, a.ID)
	case "arm":
		return conn.Exec(`INSERT OR IGNORE INTO sim_wire(id) VALUES (1)`)
	case "disarm":
		return conn.Exec(`DELETE FROM sim_wire`)
	default: // tripwire
		rows, err := sqlrows.Query(conn, `SELECT count(*) FROM sim_wire`)
		if err != nil {
			return err
		}
		if rows.Values[0][0].(int64) > 0 {
			conn.Exec(`ROLLBACK`)
			return errors.New("interrupted")
		}
		return sqlrows.Exec(conn, `INSERT OR IGNORE INTO sim_parent(id) VALUES (?)`, a.ID)
	}
}

// Seeds reads which seeds to run from the environment: SQLSYNC_SIM_SEEDS=N
// runs N seeds from 1 (default n), SQLSYNC_SIM_SEED=S runs seed S alone.
// A value that is not a number is an error, never zero seeds.
func Seeds(n int) (first uint64, count int, err error) {
	first, count = 1, n
	if s := os.Getenv("SQLSYNC_SIM_SEEDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			return 0, 0, fmt.Errorf("SQLSYNC_SIM_SEEDS=%q: want a number of seeds, 1 or more", s)
		}
		count = v
	}
	if s := os.Getenv("SQLSYNC_SIM_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("SQLSYNC_SIM_SEED=%q: want a seed, a number", s)
		}
		first, count = v, 1
	}
	return first, count, nil
}
