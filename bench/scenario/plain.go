package scenario

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
	"github.com/sqlsync-go/sqlsync/shared/testmutator"
)

// plainDB is the baseline the durable scenarios compare with: a plain
// ncruces SQLite connection on a file of its default (os) VFS, with the
// todo schema, synchronous=FULL and 4 KiB pages, inserting rows through
// one prepared statement in explicit transactions.
type plainDB struct {
	conn    *sqlite3.Conn
	insert  *sqlite3.Stmt
	withPos bool // the schema has items.position
	mode    string
}

// openPlain creates a plain SQLite database at path (a file name or URI)
// in journal mode mode ("wal" or "delete"; "" leaves the VFS's default).
func openPlain(path, mode string) (*plainDB, error) {
	conn, err := sqlite3.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open plain SQLite %s: %w", path, err)
	}
	p := &plainDB{conn: conn, mode: mode}
	if err := p.setUp(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("open plain SQLite %s: %w", path, err)
	}
	return p, nil
}

func (p *plainDB) setUp() error {
	if err := p.conn.Exec(`PRAGMA page_size=4096; PRAGMA synchronous=FULL`); err != nil {
		return err
	}
	if p.mode != "" {
		if err := p.conn.Exec(`PRAGMA journal_mode=` + p.mode); err != nil {
			return err
		}
		rows, err := sqlrows.Query(p.conn, `PRAGMA journal_mode`)
		if err != nil {
			return err
		}
		if got := rows.Values[0][0].(string); !strings.EqualFold(got, p.mode) {
			return fmt.Errorf("journal_mode is %s, want %s", got, p.mode)
		}
	}
	err := p.tx(func() error {
		for i, m := range testmutator.Migrations {
			if err := p.conn.Exec(m); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		return p.conn.Exec(`PRAGMA user_version=` + strconv.Itoa(len(testmutator.Migrations)))
	})
	if err != nil {
		return err
	}
	// The same insert as the mutator's: with the position, if the schema
	// has that column.
	cols, err := sqlrows.Query(p.conn, `SELECT count(*) FROM pragma_table_info('items') WHERE name = 'position'`)
	if err != nil {
		return err
	}
	p.withPos = cols.Values[0][0].(int64) == 1
	insert := `INSERT INTO items(id, title) VALUES (?, ?)`
	if p.withPos {
		insert = `INSERT INTO items(id, title, position) VALUES (?, ?, ?)`
	}
	p.insert, _, err = p.conn.Prepare(insert)
	return err
}

// tx runs f in an immediate transaction.
func (p *plainDB) tx(f func() error) error {
	if err := p.conn.Exec(`BEGIN IMMEDIATE`); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := f(); err != nil {
		p.conn.Exec(`ROLLBACK`)
		return err
	}
	if err := p.conn.Exec(`COMMIT`); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// insertRows inserts rows in one durable transaction.
func (p *plainDB) insertRows(rows []row) error {
	return p.tx(func() error {
		for _, r := range rows {
			if err := p.insertRow(r); err != nil {
				return err
			}
		}
		return nil
	})
}

func (p *plainDB) insertRow(r row) error {
	if err := p.insert.BindText(1, r.id); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	if err := p.insert.BindText(2, r.title); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	if p.withPos {
		if err := p.insert.BindFloat(3, r.pos); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
	}
	if err := p.insert.Exec(); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	return nil
}

func (p *plainDB) Close() error {
	if p.insert != nil {
		p.insert.Close()
	}
	return p.conn.Close()
}

// row is one todo item. A positive pos is its place in the list.
type row struct {
	id, title string
	pos       float64
}

// addArgs are the args of the todo mutators' add mutation.
type addArgs struct {
	ID       string  `json:"id"`
	Title    string  `json:"title"`
	Position float64 `json:"position,omitempty"`
}

// args returns the todo mutator's JSON args for adding r. The scenarios
// give every added item its position, as a client placing it in the list
// would: without one, the Go test mutator finds the last position with a
// max() over an unindexed column, a scan of the whole table per insert
// that would swamp what the scenarios measure (bench/README.md, "Problems
// found").
func (r row) args() []byte {
	b, err := json.Marshal(addArgs{ID: r.id, Title: r.title, Position: r.pos})
	if err != nil {
		panic(err) // strings and a float cannot fail to encode
	}
	return b
}

// memStats is the process's memory at one moment, after a full GC.
type memStats struct {
	HeapInuse uint64
	Sys       uint64
	RSS       uint64
}

// measureMemory collects garbage, returns freed memory to the OS, and reads
// the runtime's statistics and the resident set size from /proc/self/statm.
func measureMemory() (memStats, error) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out := memStats{HeapInuse: ms.HeapInuse, Sys: ms.Sys}
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return out, fmt.Errorf("read resident set size: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return out, fmt.Errorf("read resident set size: statm has %d fields", len(f))
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return out, fmt.Errorf("read resident set size: %w", err)
	}
	out.RSS = pages * uint64(os.Getpagesize())
	return out, nil
}

// toFSPath turns an OS directory into a hackpadfs path of the os FS
// (slash-separated, relative to the root).
func toFSPath(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	return strings.TrimPrefix(filepath.ToSlash(abs), "/")
}
