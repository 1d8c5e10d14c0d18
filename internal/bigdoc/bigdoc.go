// Package bigdoc fills a document's store with a large table, for the
// tests and benchmarks of large documents: it writes through the project's
// own VFS in coordinator mode, so the store holds exactly what a
// coordinator would have committed.
package bigdoc

import (
	"errors"
	"fmt"

	"github.com/sqlsync-go/sqlsync/server"
	"github.com/sqlsync-go/sqlsync/vfs"
)

// RowBytes is the size of each row's body.
const RowBytes = 1000

// Schema is the table Fill writes: k is indexed, for point queries that
// touch few pages.
const Schema = `CREATE TABLE IF NOT EXISTS big(id INTEGER PRIMARY KEY, k INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS big_k ON big(k)`

// perCommit bounds the row bytes of one transaction, and so the memory of
// one commit.
const perCommit = 8 << 20

// Fill adds rows to table big (Schema) in store until the database holds
// about size bytes, in transactions of at most 8 MiB of rows, and returns
// the number of rows in big. Row id has k = id*7919 mod 1000003 (distinct
// for the first million rows, in no order) and a random body. The store must be a coordinator's (no local layer).
func Fill(store vfs.Store, size int64) (rows int64, err error) {
	db := vfs.NewDatabase(store, vfs.CoordinatorMode)
	defer db.Close()
	conn, err := db.Open()
	if err != nil {
		return 0, fmt.Errorf("fill: %w", err)
	}
	defer conn.Close()
	if err := conn.Exec(Schema); err != nil {
		return 0, fmt.Errorf("fill: create table: %w", err)
	}
	batch := int64(perCommit / RowBytes)
	for int64(store.PageCount())*vfs.PageSize < size {
		stmt := fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
			INSERT INTO big(k, body) SELECT (ifnull((SELECT max(id) FROM big), 0) + i) * 7919 %% 1000003, randomblob(%d) FROM n`, batch, RowBytes)
		if err := conn.Exec(stmt); err != nil {
			return 0, fmt.Errorf("fill: insert rows: %w", err)
		}
	}
	st, _, err := conn.Prepare(`SELECT count(*) FROM big`)
	if err != nil {
		return 0, fmt.Errorf("fill: count rows: %w", err)
	}
	defer st.Close()
	if !st.Step() {
		return 0, fmt.Errorf("fill: count rows: %w", st.Err())
	}
	return st.ColumnInt64(0), nil
}

// FillDocument fills document docID in a coordinator's data directory
// (serve --data; no coordinator may run on it) with Fill, and returns the
// rows of big and the document's size in bytes.
func FillDocument(dataDir, docID string, size int64) (rows, bytes int64, err error) {
	store, err := server.OpenDocumentStore(dataDir, docID)
	if err != nil {
		return 0, 0, fmt.Errorf("fill: %w", err)
	}
	rows, err = Fill(store, size)
	bytes = int64(store.PageCount()) * vfs.PageSize
	return rows, bytes, errors.Join(err, store.Close())
}
