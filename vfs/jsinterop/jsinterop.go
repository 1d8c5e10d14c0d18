//go:build js

// Package jsinterop holds the few patterns every syscall/js binding of
// sqlsync needs: awaiting a JavaScript promise from a goroutine, turning a
// thrown exception into an error, and settling a promise from Go work.
//
// A Go function called from JavaScript must not block on a promise (the
// event loop that would settle it is waiting for the function): Await is
// for goroutines only, and Promise runs its work in one.
package jsinterop

import (
	"context"
	"errors"
	"fmt"
	"syscall/js"
)

// Await waits for promise p to settle and returns its value, or its
// rejection as a js.Error. It must run on a goroutine of its own, never
// inside a function called from JavaScript.
func Await(ctx context.Context, p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	onOK := js.FuncOf(func(this js.Value, args []js.Value) any {
		ch <- result{v: arg0(args)}
		return nil
	})
	onErr := js.FuncOf(func(this js.Value, args []js.Value) any {
		ch <- result{err: asError(arg0(args))}
		return nil
	})
	defer onOK.Release()
	defer onErr.Release()
	if err := Catch(func() { p.Call("then", onOK, onErr) }); err != nil {
		return js.Undefined(), err
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		// The callbacks may still fire: leave room in ch, keep them alive.
		go func() { <-ch }()
		return js.Undefined(), ctx.Err()
	}
}

func arg0(args []js.Value) js.Value {
	if len(args) == 0 {
		return js.Undefined()
	}
	return args[0]
}

// asError wraps a thrown or rejected JavaScript value as an error.
func asError(v js.Value) error {
	if v.Type() == js.TypeObject && !v.Get("message").IsUndefined() {
		return js.Error{Value: v}
	}
	return fmt.Errorf("javascript: %s", js.Global().Get("String").Invoke(v).String())
}

// Catch runs f and returns, as an error, the JavaScript exception (or Go
// panic) it raised.
func Catch(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if jsErr, ok := r.(js.Error); ok {
				err = jsErr
				return
			}
			if e, ok := r.(error); ok {
				err = fmt.Errorf("panic: %w", e)
				return
			}
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	f()
	return nil
}

// Promise returns a JavaScript Promise settled by work, which runs on a new
// goroutine: it resolves with work's value or rejects with an Error holding
// work's error (see NewError).
func Promise(work func() (any, error)) js.Value {
	var handler js.Func
	handler = js.FuncOf(func(this js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		handler.Release()
		go func() {
			var v any
			var werr error
			if err := Catch(func() { v, werr = work() }); err != nil {
				werr = err
			}
			if werr != nil {
				reject.Invoke(NewError(werr))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	return js.Global().Get("Promise").New(handler)
}

// Coder is an error with a stable machine-readable code.
type Coder interface {
	error
	Code() string
}

// NewError returns a JavaScript Error with err's message and, if err wraps
// a Coder, its code in .code.
func NewError(err error) js.Value {
	e := js.Global().Get("Error").New(err.Error())
	var c Coder
	if errors.As(err, &c) {
		e.Set("code", c.Code())
	}
	return e
}
