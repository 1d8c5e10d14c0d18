package mutatorhost

import "testing"

func TestCheckStatement(t *testing.T) {
	allowed := []string{
		"SELECT 1",
		"  insert into items values (1)",
		"WITH x AS (SELECT 1) SELECT * FROM x",
		"CREATE TABLE items(id)",
		"CREATE TABLE IF NOT EXISTS main.items(id)",
		"CREATE UNIQUE INDEX i ON items(id)",
		"CREATE TRIGGER t AFTER INSERT ON items BEGIN UPDATE items SET x = 1; END",
		"PRAGMA user_version",
		"PRAGMA user_version = 3",
		"PRAGMA main.application_id = 7",
		"pragma table_info(items)",
		"PRAGMA foreign_key_check",
		"PRAGMA integrity_check(10)",
		"PRAGMA page_count",
		"EXPLAIN QUERY PLAN SELECT 1",
		"-- comment\nSELECT 1",
		"/* BEGIN */ SELECT 'BEGIN'",
		"; ; SELECT 1",
		"",
		"-- only a comment",
		"REPLACE INTO items VALUES (1)",
		"ANALYZE",
	}
	for _, sql := range allowed {
		if err := checkStatement(sql); err != nil {
			t.Errorf("%q refused: %v", sql, err)
		}
	}
	refused := []string{
		"BEGIN", "begin deferred", "BEGIN EXCLUSIVE TRANSACTION", "COMMIT", "END", "ROLLBACK",
		"ROLLBACK TO x", "SAVEPOINT x", "RELEASE x", "RELEASE SAVEPOINT x",
		"ATTACH 'x' AS y", "DETACH y", "VACUUM", "VACUUM INTO '/tmp/x'",
		"EXPLAIN BEGIN", "EXPLAIN QUERY PLAN COMMIT",
		";BEGIN", "/* x */BEGIN", "--x\nBEGIN", "\tbegin",
		"PRAGMA journal_mode=WAL", "PRAGMA locking_mode = EXCLUSIVE", "PRAGMA synchronous=OFF",
		"PRAGMA writable_schema=ON", "PRAGMA schema_version = 1", "PRAGMA foreign_keys=OFF",
		"PRAGMA defer_foreign_keys = ON", "PRAGMA cache_size(1)", "PRAGMA case_sensitive_like = 1",
		"PRAGMA temp.user_version = 1", "PRAGMA other.table_info(x)", `PRAGMA "journal_mode" = OFF`,
		"PRAGMA [ignore_check_constraints] = 1", "PRAGMA optimize", "PRAGMA",
		"CREATE TEMP TABLE t(x)", "CREATE TEMPORARY VIEW v AS SELECT 1", "CREATE TABLE temp.t(x)",
		`CREATE INDEX IF NOT EXISTS "temp".i ON t(x)`, "CREATE TRIGGER temp.tr AFTER INSERT ON t BEGIN SELECT 1; END",
	}
	for _, sql := range refused {
		if err := checkStatement(sql); err == nil {
			t.Errorf("%q allowed", sql)
		}
	}
}

func TestCheckNames(t *testing.T) {
	for _, sql := range []string{
		"SELECT * FROM __sqlsync_clients",
		`DELETE FROM "__sqlsync_clients"`,
		"UPDATE [__SQLSYNC_CLIENTS] SET last_seq = 0",
		"SELECT * FROM '__sqlsync_clients'",
		"CREATE TRIGGER t AFTER INSERT ON items BEGIN DELETE FROM __sqlsync_clients; END",
		"DROP TABLE main.__sqlsync_anything",
	} {
		if err := checkNames(sql); err == nil {
			t.Errorf("%q allowed", sql)
		}
	}
	for _, sql := range []string{"SELECT * FROM items", "SELECT '__sql' || 'sync'", "-- __sqlsync_clients\nSELECT 1"} {
		if err := checkNames(sql); err != nil {
			t.Errorf("%q refused: %v", sql, err)
		}
	}
}

func TestBlank(t *testing.T) {
	for sql, want := range map[string]bool{
		"": true, " ;\n; ": true, "-- x": true, "/* y */ ;": true, "/* unterminated": true,
		"SELECT 1": false, "; x": false,
	} {
		if got := blank(sql); got != want {
			t.Errorf("blank(%q) = %v, want %v", sql, got, want)
		}
	}
}

func FuzzCheckStatement(f *testing.F) {
	for _, s := range []string{"BEGIN", "PRAGMA user_version = 1", "/* x */ SELECT \"a\"\"b\" FROM [c]", "'unterminated", "CREATE TABLE IF NOT EXISTS"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		checkStatement(sql) // must not panic or loop
		checkNames(sql)
		blank(sql)
	})
}
