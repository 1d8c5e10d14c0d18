package engine

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ncruces/go-sqlite3"
	"github.com/sqlsync-go/sqlsync/shared/sqlrows"
)

// Dump writes the database's schema and rows as SQL text that rebuilds it,
// in a stable order: two databases with the same logical content dump the
// same text.
func Dump(conn *sqlite3.Conn, w io.Writer) error {
	ver, err := sqlrows.Query(conn, `PRAGMA user_version`)
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	schema, err := sqlrows.Query(conn, `SELECT type, name, sql FROM sqlite_schema
		WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'
		ORDER BY type = 'table' DESC, name`)
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	var b strings.Builder
	b.WriteString("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")
	fmt.Fprintf(&b, "PRAGMA user_version=%d;\n", ver.Values[0][0])
	var tables []string
	for _, r := range schema.Values {
		b.WriteString(r[2].(string) + ";\n")
		if r[0] == "table" {
			tables = append(tables, r[1].(string))
		}
	}
	for _, t := range tables {
		rows, err := sqlrows.Query(conn, `SELECT * FROM `+sqlite3.QuoteIdentifier(t))
		if err != nil {
			return fmt.Errorf("dump %s: %w", t, err)
		}
		order := make([]string, len(rows.Columns))
		for i := range order {
			order[i] = strconv.Itoa(i + 1)
		}
		rows, err = sqlrows.Query(conn, `SELECT * FROM `+sqlite3.QuoteIdentifier(t)+` ORDER BY `+strings.Join(order, ","))
		if err != nil {
			return fmt.Errorf("dump %s: %w", t, err)
		}
		for _, r := range rows.Values {
			vals := make([]string, len(r))
			for i, v := range r {
				vals[i] = sqlite3.Quote(v)
			}
			fmt.Fprintf(&b, "INSERT INTO %s VALUES(%s);\n", sqlite3.QuoteIdentifier(t), strings.Join(vals, ","))
		}
	}
	b.WriteString("COMMIT;\n")
	_, err = io.WriteString(w, b.String())
	return err
}

// Dump writes the coordinator's copy as SQL text; see [Dump].
func (c *Coordinator) Dump(w io.Writer) error {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if err := c.openRead(); err != nil {
		return err
	}
	return Dump(c.read, w)
}

// Dump writes the replica, pending mutations included, as SQL text.
func (c *Client) Dump(w io.Writer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Dump(c.conn, w)
}
