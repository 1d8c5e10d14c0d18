package bridge

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/sqlsync-go/sqlsync/shared/engine"
)

// DecodeParams decodes a JSON array of query parameters; empty input is no
// parameters.
func DecodeParams(b []byte) ([]any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw []any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("params: want a JSON array: %w", err)
	}
	out := make([]any, len(raw))
	for i, v := range raw {
		p, err := param(v)
		if err != nil {
			return nil, fmt.Errorf("param %d: %w", i+1, err)
		}
		out[i] = p
	}
	return out, nil
}

func param(v any) (any, error) {
	switch v := v.(type) {
	case nil, bool, string:
		return v, nil
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return i, nil
		}
		f, err := v.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", v, err)
		}
		return f, nil
	case map[string]any:
		s, ok := v["$blob"].(string)
		if !ok || len(v) != 1 {
			return nil, errors.New(`objects must be {"$blob": base64}`)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("blob: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("unsupported value %T", v)
}

// maxSafeInt is JavaScript's Number.MAX_SAFE_INTEGER, 2^53-1.
const maxSafeInt = 1<<53 - 1

// EncodeRows returns rows as JSON: integers as numbers, except those beyond
// ±(2^53-1) as {"$int":"decimal"}; blobs as {"$blob":base64}.
func EncodeRows(rows engine.Rows) []byte {
	var b bytes.Buffer
	b.WriteString(`{"columns":`)
	cols, _ := json.Marshal(rows.Columns)
	if rows.Columns == nil {
		cols = []byte("[]")
	}
	b.Write(cols)
	b.WriteString(`,"rows":[`)
	for i, row := range rows.Values {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		for j, v := range row {
			if j > 0 {
				b.WriteByte(',')
			}
			encodeValue(&b, v)
		}
		b.WriteByte(']')
	}
	b.WriteString("]}")
	return b.Bytes()
}

func encodeValue(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case int64:
		if v > maxSafeInt || v < -maxSafeInt {
			// JavaScript numbers hold integers exactly only up to 2^53-1:
			// past that, the decimal travels as a string for the page to
			// turn into a bigint (or a rounded number).
			b.WriteString(`{"$int":"`)
			b.WriteString(strconv.FormatInt(v, 10))
			b.WriteString(`"}`)
			return
		}
		b.WriteString(strconv.FormatInt(v, 10))
	case float64:
		switch {
		case math.IsNaN(v):
			b.WriteString("null")
		case math.IsInf(v, 1):
			b.WriteString("1e999")
		case math.IsInf(v, -1):
			b.WriteString("-1e999")
		default:
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		}
	case string:
		s, _ := json.Marshal(v)
		b.Write(s)
	case []byte:
		b.WriteString(`{"$blob":"`)
		b.WriteString(base64.StdEncoding.EncodeToString(v))
		b.WriteString(`"}`)
	default:
		s, err := json.Marshal(v)
		if err != nil {
			s = []byte("null")
		}
		b.Write(s)
	}
}
