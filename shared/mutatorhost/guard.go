package mutatorhost

import (
	"fmt"
	"strings"
)

// A mutator's SQL runs inside the engine's transaction and savepoint, on the
// engine's connection. checkStatement refuses, before it is prepared, any
// statement that would break out of that: transaction control, other
// databases, connection-wide settings, and TEMP objects (which live on the
// connection, outside the replicated document, and so would let state leak
// from one mutation to the next). SQLite's authorizer could do the same, but
// a connection has one authorizer and the engine's client already uses it.
//
// The check reads a statement's leading keywords, the way SQLite's grammar
// tells statements apart: skipping whitespace, comments and empty
// statements, then EXPLAIN [QUERY PLAN].

// refusedKeywords are statements a mutator may not run, with the reason.
var refusedKeywords = map[string]string{
	"BEGIN":     "the engine owns the transaction",
	"COMMIT":    "the engine owns the transaction",
	"END":       "the engine owns the transaction",
	"ROLLBACK":  "the engine owns the transaction",
	"SAVEPOINT": "the engine owns the transaction",
	"RELEASE":   "the engine owns the transaction",
	"ATTACH":    "a mutator sees only its document",
	"DETACH":    "a mutator sees only its document",
	"VACUUM":    "the engine owns the database file",
}

// Pragmas a mutator may run. Every other pragma changes the connection or
// the file in ways the engine relies on (journal_mode, foreign_keys,
// writable_schema, …) and is refused.
var (
	// settablePragmas are header fields that live in the document and roll
	// back with the transaction.
	settablePragmas = map[string]bool{"user_version": true, "application_id": true}
	// argPragmas are queries whose parenthesized argument is a name or a
	// count, never a setting.
	argPragmas = map[string]bool{
		"table_info": true, "table_xinfo": true, "table_list": true,
		"index_info": true, "index_list": true, "index_xinfo": true,
		"foreign_key_list": true, "foreign_key_check": true,
		"integrity_check": true, "quick_check": true,
	}
	// readPragmas may be read but not set.
	readPragmas = map[string]bool{
		"data_version": true, "page_count": true, "freelist_count": true,
		"page_size": true, "schema_version": true, "encoding": true,
		"foreign_keys": true, "compile_options": true, "collation_list": true,
		"function_list": true, "module_list": true, "pragma_list": true,
	}
)

// reservedPrefix starts the names of the engine's own tables inside a
// document (the clients table): a mutator that wrote them could break
// exactly-once delivery.
const reservedPrefix = "__sqlsync"

// checkNames refuses SQL text that names one of the engine's tables. It
// looks at every identifier and string token (SQLite accepts a string where
// an identifier is expected), so it errs on the side of refusing.
func checkNames(sql string) error {
	lx := lexer{s: sql}
	for tok := lx.next(); tok != ""; tok = lx.next() {
		if len(tok) >= len(reservedPrefix) && strings.HasPrefix(strings.ToLower(unquote(tok)), reservedPrefix) {
			return refuse("%s belongs to the engine: a mutator may not use it", unquote(tok))
		}
	}
	return nil
}

// refusal is a statement the host will not run.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

func refuse(format string, args ...any) error {
	return &refusal{msg: "sqlsync: " + fmt.Sprintf(format, args...)}
}

// checkStatement returns an error if the first statement of sql is one a
// mutator may not run.
func checkStatement(sql string) error {
	lx := lexer{s: sql}
	tok := lx.next()
	for tok == ";" {
		tok = lx.next()
	}
	kw := strings.ToUpper(tok)
	if kw == "EXPLAIN" {
		kw = strings.ToUpper(lx.next())
		if kw == "QUERY" {
			lx.next() // PLAN
			kw = strings.ToUpper(lx.next())
		}
	}
	if why, ok := refusedKeywords[kw]; ok {
		return refuse("%s is not allowed in a mutator: %s", kw, why)
	}
	switch kw {
	case "PRAGMA":
		return checkPragma(&lx)
	case "CREATE":
		return checkCreate(&lx)
	}
	return nil
}

func checkPragma(lx *lexer) error {
	name := lx.next()
	after := lx.next()
	if after == "." {
		if schema := unquote(name); !strings.EqualFold(schema, "main") {
			return refuse("PRAGMA on schema %q is not allowed in a mutator: a mutator sees only its document", schema)
		}
		name = lx.next()
		after = lx.next()
	}
	name = strings.ToLower(unquote(name))
	setting := after == "=" || after == "("
	switch {
	case settablePragmas[name]:
		return nil
	case argPragmas[name]:
		return nil
	case readPragmas[name] && !setting:
		return nil
	case readPragmas[name]:
		return refuse("setting PRAGMA %s is not allowed in a mutator: it is the engine's", name)
	}
	return refuse("PRAGMA %s is not allowed in a mutator (allowed: user_version, application_id and read-only pragmas)", name)
}

func checkCreate(lx *lexer) error {
	kw := strings.ToUpper(lx.next())
	if kw == "TEMP" || kw == "TEMPORARY" {
		return refuse("TEMP objects are not allowed in a mutator: they live outside the document")
	}
	if kw == "UNIQUE" || kw == "VIRTUAL" {
		kw = strings.ToUpper(lx.next())
	}
	switch kw {
	case "TABLE", "INDEX", "VIEW", "TRIGGER":
	default:
		return nil
	}
	name := lx.next()
	if strings.EqualFold(name, "IF") {
		lx.next() // NOT
		lx.next() // EXISTS
		name = lx.next()
	}
	if lx.next() == "." {
		if schema := unquote(name); !strings.EqualFold(schema, "main") {
			return refuse("CREATE %s in schema %q is not allowed in a mutator: a mutator sees only its document", kw, schema)
		}
	}
	return nil
}

// lexer splits SQL into the tokens checkStatement needs: words and quoted
// identifiers (returned with their quotes), strings, and single punctuation
// characters. It skips whitespace and comments.
type lexer struct {
	s string
	i int
}

// next returns the next token, or "" at the end of the text.
func (lx *lexer) next() string {
	s := lx.s
	for lx.i < len(s) {
		c := s[lx.i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			lx.i++
		case c == '-' && strings.HasPrefix(s[lx.i:], "--"):
			if j := strings.IndexByte(s[lx.i:], '\n'); j >= 0 {
				lx.i += j + 1
			} else {
				lx.i = len(s)
			}
		case c == '/' && strings.HasPrefix(s[lx.i:], "/*"):
			if j := strings.Index(s[lx.i+2:], "*/"); j >= 0 {
				lx.i += j + 4
			} else {
				lx.i = len(s)
			}
		case c == '"' || c == '`' || c == '\'' || c == '[':
			end := c
			if c == '[' {
				end = ']'
			}
			start := lx.i
			lx.i++
			for lx.i < len(s) {
				if s[lx.i] == end {
					// A doubled quote is an escaped quote (not in [...]).
					if end != ']' && lx.i+1 < len(s) && s[lx.i+1] == end {
						lx.i += 2
						continue
					}
					lx.i++
					return s[start:lx.i]
				}
				lx.i++
			}
			return s[start:]
		case isWordByte(c):
			start := lx.i
			for lx.i < len(s) && isWordByte(s[lx.i]) {
				lx.i++
			}
			return s[start:lx.i]
		default:
			lx.i++
			return s[lx.i-1 : lx.i]
		}
	}
	return ""
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 ||
		('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// unquote strips an identifier's quotes.
func unquote(tok string) string {
	if len(tok) >= 2 {
		switch q := tok[0]; q {
		case '"', '`', '\'':
			if tok[len(tok)-1] == q {
				return strings.ReplaceAll(tok[1:len(tok)-1], string([]byte{q, q}), string(q))
			}
		case '[':
			if tok[len(tok)-1] == ']' {
				return tok[1 : len(tok)-1]
			}
		}
	}
	return tok
}

// blank reports whether sql holds no statement: only whitespace, comments
// and semicolons.
func blank(sql string) bool {
	lx := lexer{s: sql}
	for {
		switch lx.next() {
		case "":
			return true
		case ";":
		default:
			return false
		}
	}
}
