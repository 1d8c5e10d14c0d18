package protocol_test

import (
	"errors"
	"fmt"

	"github.com/sqlsync-go/sqlsync/shared/protocol"
)

func Example() {
	push := protocol.Frame{Push: &protocol.Push{Mutations: []protocol.Mutation{
		{Seq: 1, Name: "addTodo", Args: []byte(`{"title":"milk"}`)},
		{Seq: 2, Name: "toggleTodo", Args: []byte(`{"id":1}`)},
	}}}
	b, err := protocol.Encode(push)
	if err != nil {
		fmt.Println(err)
		return
	}

	f, err := protocol.Decode(b, protocol.DefaultLimits())
	switch {
	case errors.Is(err, protocol.ErrTooLarge):
		fmt.Println("close with", protocol.CodeLimit)
		return
	case err != nil:
		fmt.Println("close with", protocol.CodeBadFrame)
		return
	}
	fmt.Println(f.Kind())
	for _, m := range f.Push.Mutations {
		fmt.Printf("%d %s %s\n", m.Seq, m.Name, m.Args)
	}
	// Output:
	// push
	// 1 addTodo {"title":"milk"}
	// 2 toggleTodo {"id":1}
}
