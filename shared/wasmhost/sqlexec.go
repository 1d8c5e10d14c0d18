package wasmhost

import (
	"context"
	"fmt"

	"github.com/sqlsync-go/sqlsync/shared/abi"
	"github.com/sqlsync-go/sqlsync/shared/mutatorhost"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The host imports run the guest's SQL through a mutatorhost.Exec, which
// travels in the call's context, so that the host functions (defined once
// per runtime) find the call they serve.
type callKey struct{}

func execFrom(ctx context.Context) *mutatorhost.Exec {
	e, _ := ctx.Value(callKey{}).(*mutatorhost.Exec)
	if e == nil {
		e = new(mutatorhost.Exec) // not in a call: its methods fail
	}
	return e
}

// instantiateHostModule defines the sqlsync imports in rt.
func instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	i32 := api.ValueTypeI32
	_, err := rt.NewHostModuleBuilder(abi.ImportModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostRun), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).
		WithParameterNames("req_ptr", "req_len", "out_ptr", "out_cap").
		Export(abi.ImportRun).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(hostResult), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("out_ptr", "out_cap").
		Export(abi.ImportResult).
		Instantiate(ctx)
	return err
}

// hostRun is sqlsync.run(req_ptr, req_len, out_ptr, out_cap) -> len. A
// panic in a host function traps the guest; wazero returns it from the
// guest's call as an error.
func hostRun(ctx context.Context, mod api.Module, stack []uint64) {
	e := execFrom(ctx)
	reqPtr, reqLen := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	outPtr, outCap := api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
	if !e.Active() {
		panic(fmt.Errorf("sqlsync.%s called outside a mutation or migration", abi.ImportRun))
	}
	mem := mod.Memory()
	req, ok := mem.Read(reqPtr, reqLen)
	if !ok {
		panic(fmt.Errorf("sqlsync.run: request at %d+%d lies outside memory", reqPtr, reqLen))
	}
	out, n, err := e.Run(req, outCap)
	if err != nil {
		panic(err)
	}
	if out != nil && !mem.Write(outPtr, out) {
		panic(fmt.Errorf("sqlsync.run: output buffer at %d+%d lies outside memory", outPtr, n))
	}
	stack[0] = api.EncodeU32(n)
}

// hostResult is sqlsync.result(out_ptr, out_cap) -> len.
func hostResult(ctx context.Context, mod api.Module, stack []uint64) {
	e := execFrom(ctx)
	outPtr, outCap := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	out, n, err := e.Result(outCap)
	if err != nil {
		panic(err)
	}
	if out != nil && !mod.Memory().Write(outPtr, out) {
		panic(fmt.Errorf("sqlsync.result: output buffer at %d+%d lies outside memory", outPtr, n))
	}
	stack[0] = api.EncodeU32(n)
}
