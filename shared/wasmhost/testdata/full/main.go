// Command full is a test mutator that exercises every feature of the ABI
// and every way a mutator can fail: the mutator of the hosts' contract
// suite (package mutatorhost/hosttest). The wasmhost tests build it with
// GOOS=wasip1 GOARCH=wasm -buildmode=c-shared; make test-mutators builds
// it for the browser's tests.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"unsafe"

	"github.com/sqlsync-go/sqlsync/shared/guest"
)

func init() {
	guest.Migrate(
		`CREATE TABLE vals(id INTEGER PRIMARY KEY, n, i, r, t, b);
		 CREATE TABLE items(id TEXT PRIMARY KEY NOT NULL, title TEXT NOT NULL)`,
	)
	guest.MigrateFunc(func(tx *guest.Tx) error {
		_, err := tx.Exec(`CREATE TABLE big(id INTEGER PRIMARY KEY, body TEXT NOT NULL)`)
		return err
	})

	guest.Handle("noop", func(*guest.Tx, []byte) error { return nil })
	// For the benchmark: the same insert with and without JSON args.
	guest.HandleJSON("json", func(*guest.Tx, item) error { return nil })
	guest.Handle("insert-raw", func(tx *guest.Tx, args []byte) error {
		_, err := tx.Exec(`INSERT INTO items(id, title) VALUES (?, ?)`, args, "buy milk")
		return err
	})
	guest.HandleJSON("add", add)
	guest.HandleJSON("types", types)
	guest.HandleJSON("batch", batch)
	guest.HandleJSON("many", many)
	guest.HandleJSON("nested", nested)
	guest.HandleJSON("sql", runSQL)
	guest.HandleJSON("query", query)
	guest.HandleJSON("recover", recoverSQL)
	guest.HandleJSON("print", print)
	guest.Handle("raw", func(tx *guest.Tx, args []byte) error {
		if !bytes.Equal(args, []byte("\x00raw\xff")) {
			return fmt.Errorf("raw args %q", args)
		}
		return nil
	})
	guest.Handle("badargs", func(*guest.Tx, []byte) error {
		return fmt.Errorf("%w: always", guest.ErrBadArgs)
	})

	// Failures.
	guest.HandleJSON("fail", func(_ *guest.Tx, a struct{ Message string }) error { return errors.New(a.Message) })
	guest.Handle("panic", func(*guest.Tx, []byte) error { panic("boom") })
	guest.Handle("trap", func(*guest.Tx, []byte) error {
		// A load past the end of linear memory: a real WebAssembly trap,
		// not a Go panic.
		p := (*byte)(unsafe.Add(unsafe.Pointer(&sink[0]), 0xFFFF_FFF0-uintptr(unsafe.Pointer(&sink[0]))))
		sink[0] = *p
		return nil
	})
	guest.Handle("loop", func(*guest.Tx, []byte) error {
		for i := 0; ; i++ {
			sink[i%len(sink)]++
		}
	})
	guest.Handle("sqlloop", func(tx *guest.Tx, _ []byte) error {
		var n int64
		return tx.QueryRow(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c`).Scan(&n)
	})
	guest.HandleJSON("alloc", func(_ *guest.Tx, a struct{ N int }) error {
		b := make([]byte, a.N)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		sink = b[:1]
		return nil
	})
	guest.Handle("exit", func(*guest.Tx, []byte) error {
		os.Exit(3)
		return nil
	})
	guest.HandleJSON("counter", func(tx *guest.Tx, _ struct{}) error {
		// Guest state that survives between calls of one instance, and is
		// lost when the instance is discarded.
		counter++
		_, err := tx.Exec(`INSERT INTO items(id, title) VALUES (?, ?)`, fmt.Sprint("counter", counter), "counter")
		return err
	})
}

func main() {}

var (
	sink    = make([]byte, 16)
	counter int
)

type item struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

func add(tx *guest.Tx, a item) error {
	_, err := tx.Exec(`INSERT INTO items(id, title) VALUES (?, ?)`, a.ID, a.Title)
	return err
}

// types writes every value type through parameters, reads them back, and
// checks they survived both crossings.
func types(tx *guest.Tx, a struct{ ID int64 }) error {
	text := "héllo, wörld \u2603 \x00 nul"
	blob := []byte{0, 1, 2, 0xfe, 0xff}
	res, err := tx.Exec(`INSERT INTO vals(id, n, i, r, t, b) VALUES (?, ?, ?, ?, ?, ?)`,
		a.ID, nil, int64(math.MinInt64), math.Pi, text, blob)
	if err != nil {
		return err
	}
	if res.RowsAffected() != 1 || res.LastInsertId() != a.ID {
		return fmt.Errorf("insert: %d rows, rowid %d", res.RowsAffected(), res.LastInsertId())
	}
	if _, err := tx.Exec(`INSERT INTO vals(id, n, i, r, t, b) VALUES (?, ?, ?, ?, ?, ?)`,
		a.ID+1, nil, int64(math.MaxInt64), -0.5, "", []byte{}); err != nil {
		return err
	}
	rows, err := tx.Query(`SELECT n, i, r, t, b, typeof(b) FROM vals WHERE id IN (?, ?) ORDER BY id`, a.ID, a.ID+1)
	if err != nil {
		return err
	}
	if got := strings.Join(rows.Columns(), ","); got != "n,i,r,t,b,typeof(b)" {
		return fmt.Errorf("columns %s", got)
	}
	want := [][]any{
		{nil, int64(math.MinInt64), math.Pi, text, blob, "blob"},
		{nil, int64(math.MaxInt64), -0.5, "", []byte{}, "blob"},
	}
	for i := 0; rows.Next(); i++ {
		got := make([]any, 6)
		ptrs := make([]any, 6)
		for j := range got {
			ptrs[j] = &got[j]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if got := fmt.Sprintf("%#v", got); got != fmt.Sprintf("%#v", want[i]) {
			return fmt.Errorf("row %d: got %s, want %#v", i, got, want[i])
		}
	}
	// Typed destinations.
	var (
		i64 int64
		f   float64
		s   string
		b   []byte
		ok  bool
		i   int
	)
	if err := tx.QueryRow(`SELECT i, r, t, b, 1, 42 FROM vals WHERE id = ?`, a.ID).Scan(&i64, &f, &s, &b, &ok, &i); err != nil {
		return err
	}
	if i64 != math.MinInt64 || f != math.Pi || s != text || !bytes.Equal(b, blob) || !ok || i != 42 {
		return fmt.Errorf("typed scan: %v %v %q %v %v %v", i64, f, s, b, ok, i)
	}
	if err := tx.QueryRow(`SELECT 1 WHERE 0`).Scan(&i); !errors.Is(err, guest.ErrNoRows) {
		return fmt.Errorf("no rows: %v", err)
	}
	return nil
}

// batch runs n inserts in one crossing.
func batch(tx *guest.Tx, a struct {
	Prefix string
	N      int
}) error {
	b := tx.Batch()
	for i := range a.N {
		b.Exec(`INSERT INTO items(id, title) VALUES (?, ?)`, fmt.Sprint(a.Prefix, i), "batch")
	}
	b.Exec(`UPDATE items SET title = 'batched' WHERE title = 'batch'`)
	res, err := b.Run()
	if err != nil {
		return fmt.Errorf("statement %d: %w", len(res)+1, err)
	}
	if len(res) != a.N+1 || res[a.N].RowsAffected() != int64(a.N) {
		return fmt.Errorf("batch: %d results, last changed %d rows", len(res), res[len(res)-1].RowsAffected())
	}
	return nil
}

// many fills the big table with n rows of size bytes and reads them all
// back in one query: a response larger than the guest's buffer.
func many(tx *guest.Tx, a struct{ N, Size int }) error {
	body := strings.Repeat("x", a.Size)
	b := tx.Batch()
	for range a.N {
		b.Exec(`INSERT INTO big(body) VALUES (?)`, body)
	}
	if _, err := b.Run(); err != nil {
		return err
	}
	rows, err := tx.Query(`SELECT id, body FROM big ORDER BY id`)
	if err != nil {
		return err
	}
	n := 0
	for rows.Next() {
		var id int
		var got string
		if err := rows.Scan(&id, &got); err != nil {
			return err
		}
		if got != body {
			return fmt.Errorf("row %d: body of %d bytes", id, len(got))
		}
		n++
	}
	if n != a.N {
		return fmt.Errorf("read %d rows, want %d", n, a.N)
	}
	return nil
}

// nested writes while iterating a query's rows.
func nested(tx *guest.Tx, _ struct{}) error {
	rows, err := tx.Query(`SELECT id, title FROM items ORDER BY id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, title string
		if err := rows.Scan(&id, &title); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE items SET title = ? WHERE id = ?`, strings.ToUpper(title), id); err != nil {
			return err
		}
	}
	return rows.Err()
}

// runSQL runs arbitrary SQL: for tests of what the host refuses.
func runSQL(tx *guest.Tx, a struct {
	SQL  string
	Args []any
}) error {
	for i, v := range a.Args {
		if f, ok := v.(float64); ok && f == math.Trunc(f) {
			a.Args[i] = int64(f)
		}
	}
	_, err := tx.Exec(a.SQL, a.Args...)
	return err
}

// query runs a query and fails unless it returns want rows.
func query(tx *guest.Tx, a struct {
	SQL  string
	Want int
}) error {
	rows, err := tx.Query(a.SQL)
	if err != nil {
		return err
	}
	n := 0
	for rows.Next() {
		n++
	}
	if n != a.Want {
		return fmt.Errorf("%d rows, want %d", n, a.Want)
	}
	return nil
}

// recoverSQL meets an SQL error, handles it, and goes on.
func recoverSQL(tx *guest.Tx, a item) error {
	_, err := tx.Exec(`INSERT INTO items(id, title) VALUES (?, ?)`, a.ID, a.Title)
	var serr *guest.Error
	if !errors.As(err, &serr) || serr.Code&0xff != 19 {
		return fmt.Errorf("want a constraint error, got %v", err)
	}
	_, err = tx.Exec(`INSERT INTO items(id, title) VALUES (?, ?)`, a.ID+"-2", a.Title)
	return err
}

func print(_ *guest.Tx, a struct{ Lines int }) error {
	for i := range a.Lines {
		fmt.Printf("line %d\n", i)
		fmt.Fprintf(os.Stderr, "err line %d\n", i)
	}
	return nil
}
