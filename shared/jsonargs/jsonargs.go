// Package jsonargs decodes a mutation's JSON args: the one rule the guest
// SDK and the Go test mutator share. Args are decoded by
// segmentio/encoding/json, a drop-in for encoding/json that caches a
// decoder per type (under WebAssembly, encoding/json's reflection was more
// than half the CPU of a one-row mutation); args it refuses are decoded
// again by encoding/json for the error, so a rejection reads as it always
// has and never quotes the args.
package jsonargs

import (
	"encoding/json"
	"reflect"

	fastjson "github.com/segmentio/encoding/json"
)

// Decode decodes raw into v, a non-nil pointer.
func Decode(raw []byte, v any) error {
	err := fastjson.Unmarshal(raw, v)
	if err == nil {
		return nil
	}
	again := reflect.New(reflect.TypeOf(v).Elem()).Interface()
	if serr := json.Unmarshal(raw, again); serr != nil {
		return serr
	}
	return err
}
