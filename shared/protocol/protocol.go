package protocol

// Version is the protocol version this package speaks, sent in Hello and Welcome.
const Version = 1

// PageSize is the size in bytes of every database page carried in a Diff.
const PageSize = 4096

// Codes carried in Close frames.
const (
	CodeBadFrame     = "bad_frame"    // the peer sent a frame that did not decode or validate
	CodeVersion      = "version"      // the peer's protocol version is not supported
	CodeUnauthorized = "unauthorized" // the Hello token is missing or invalid
	CodeForbidden    = "forbidden"    // the token does not grant access to the document
	CodeLimit        = "limit"        // the peer exceeded a size or count limit
	CodeInternal     = "internal"     // the sender hit an internal error
	CodeShutdown     = "shutdown"     // the sender is shutting down
	CodeBadRequest   = "bad_request"  // the frame was valid but not allowed at this point
	CodeIdentity     = "identity"     // the Hello's client ID is bound to another secret
)

// Mutation is one named mutation a client asks the coordinator to apply.
type Mutation struct {
	Seq  uint64 `cbor:"1,keyasint,omitempty"` // client-assigned, nonzero, increasing
	Name string `cbor:"2,keyasint,omitempty"` // mutator name, non-empty
	Args []byte `cbor:"3,keyasint,omitempty"` // opaque encoded arguments
}

// Hello is the client's first frame: it names the document and resumes from LSN (0 = new).
type Hello struct {
	Version  uint32 `cbor:"1,keyasint,omitempty"`
	DocID    string `cbor:"2,keyasint,omitempty"`
	ClientID string `cbor:"3,keyasint,omitempty"`
	LSN      uint64 `cbor:"4,keyasint,omitempty"`
	Token    string `cbor:"5,keyasint,omitempty"`
	// Secret proves the client owns ClientID: a random string the client
	// keeps with its ID and never shows anyone but the coordinator, which
	// binds the ID to it on first sight (optional: older clients send none).
	Secret string `cbor:"6,keyasint,omitempty"`
	// Capabilities names the optional parts of the protocol the client
	// speaks (CapPresence); a coordinator ignores names it does not know.
	Capabilities []string `cbor:"7,keyasint,omitempty"`
	// Resume names the stream the client was staging when its connection
	// broke (see Stream), for a client with CapStream.
	Resume *Stream `cbor:"8,keyasint,omitempty"`
	// Held is, for a client with CapLazy, the bitmap of the pages its
	// snapshot holds (see HeldHas): the coordinator sends it changes of
	// these.
	Held []byte `cbor:"9,keyasint,omitempty"`
}

// Push carries the client's pending mutations, in seq order.
type Push struct {
	Mutations []Mutation `cbor:"1,keyasint,omitempty"`
}

// Welcome is the server's reply to Hello, carrying the document's current LSN.
type Welcome struct {
	Version     uint32 `cbor:"1,keyasint,omitempty"`
	LSN         uint64 `cbor:"2,keyasint,omitempty"`
	MutatorHash string `cbor:"3,keyasint,omitempty"`
	// Capabilities names the Hello's capabilities the coordinator grants
	// on this connection.
	Capabilities []string `cbor:"4,keyasint,omitempty"`
	// Presence holds the presence limits, when CapPresence is granted.
	Presence *PresenceLimits `cbor:"5,keyasint,omitempty"`
}

// Page is the newest copy of one database page, numbered from 1.
type Page struct {
	No   uint32 `cbor:"1,keyasint,omitempty"`
	Data []byte `cbor:"2,keyasint,omitempty"`
	// Delta says Data is the XOR of the page with the receiver's copy of it
	// at the diff's From: mostly zeros, which the WebSocket's
	// permessage-deflate shrinks to almost nothing.
	Delta bool `cbor:"3,keyasint,omitempty"`
}

// Diff is a fast-forward diff taking a database from LSN From to LSN To.
type Diff struct {
	From      uint64 `cbor:"1,keyasint,omitempty"`
	To        uint64 `cbor:"2,keyasint,omitempty"`
	PageCount uint32 `cbor:"3,keyasint,omitempty"` // database size in pages at To
	Pages     []Page `cbor:"4,keyasint,omitempty"` // changed pages, ascending by No
	// More says the diff goes on in the next frame (same From and To, pages
	// continuing in order); the receiver applies it once the last arrives.
	More bool `cbor:"5,keyasint,omitempty"`
	// Stream marks a frame of a streamed diff, sent to a client with
	// CapStream; the rules above differ for those (see Stream).
	Stream *Stream `cbor:"6,keyasint,omitempty"`
}

// Rejected tells the receiver that the coordinator rejected its mutation Seq, with the mutator's message.
type Rejected struct {
	Seq     uint64 `cbor:"1,keyasint,omitempty"`
	Message string `cbor:"2,keyasint,omitempty"`
}

// Close is an error that closes the connection; the WebSocket close follows it.
type Close struct {
	Code   string `cbor:"1,keyasint,omitempty"` // one of the Code constants, or a newer code
	Reason string `cbor:"2,keyasint,omitempty"` // human-readable detail
}

// Frame is one WebSocket binary message; exactly one of its fields is set.
type Frame struct {
	Hello    *Hello    `cbor:"1,keyasint,omitempty"`
	Push     *Push     `cbor:"2,keyasint,omitempty"`
	Welcome  *Welcome  `cbor:"3,keyasint,omitempty"`
	Diff     *Diff     `cbor:"4,keyasint,omitempty"`
	Rejected *Rejected `cbor:"5,keyasint,omitempty"`
	Close    *Close    `cbor:"6,keyasint,omitempty"`
	// Presence frames, only on a connection granted CapPresence.
	PresenceSet     *PresenceSet     `cbor:"7,keyasint,omitempty"`
	Presence        *Presence        `cbor:"8,keyasint,omitempty"`
	PresenceRefused *PresenceRefused `cbor:"9,keyasint,omitempty"`
	// Page frames, only on a connection granted CapLazy.
	PageRequest *PageRequest `cbor:"10,keyasint,omitempty"`
	PageReply   *PageReply   `cbor:"11,keyasint,omitempty"`
}

// Kind names the message the frame holds, for logging: "hello", "push",
// "welcome", "diff", "rejected", "close", "presence_set", "presence",
// "presence_refused", "page_request" or "page_reply"; "empty" if none is set and "multiple" if more than
// one is.
func (f Frame) Kind() string {
	kind, n := "empty", 0
	if f.Hello != nil {
		kind, n = "hello", n+1
	}
	if f.Push != nil {
		kind, n = "push", n+1
	}
	if f.Welcome != nil {
		kind, n = "welcome", n+1
	}
	if f.Diff != nil {
		kind, n = "diff", n+1
	}
	if f.Rejected != nil {
		kind, n = "rejected", n+1
	}
	if f.Close != nil {
		kind, n = "close", n+1
	}
	if f.PresenceSet != nil {
		kind, n = "presence_set", n+1
	}
	if f.Presence != nil {
		kind, n = "presence", n+1
	}
	if f.PresenceRefused != nil {
		kind, n = "presence_refused", n+1
	}
	if f.PageRequest != nil {
		kind, n = "page_request", n+1
	}
	if f.PageReply != nil {
		kind, n = "page_reply", n+1
	}
	if n > 1 {
		return "multiple"
	}
	return kind
}

// Limits bounds what Decode accepts; a zero or negative field means its DefaultLimits value.
type Limits struct {
	MaxFrameBytes       int // whole encoded frame
	MaxMutationsPerPush int // mutations in one Push
	MaxArgsBytes        int // Mutation.Args
	MaxNameBytes        int // Mutation.Name, Close.Code, Welcome.MutatorHash
	MaxPagesPerDiff     int // pages in one Diff
	MaxDocIDBytes       int // Hello.DocID, Hello.ClientID and Hello.Secret
	MaxTokenBytes       int // Hello.Token
	MaxMessageBytes     int // Rejected.Message, Close.Reason and PresenceRefused.Reason
	MaxPresenceBytes    int // PresenceSet.State and Peer.State
	MaxPresencePeers    int // Presence.Peers and Presence.Gone together
}

// DefaultLimits returns the limits a coordinator or client uses unless configured otherwise.
func DefaultLimits() Limits {
	return Limits{
		MaxFrameBytes:       16 << 20,
		MaxMutationsPerPush: 1000,
		MaxArgsBytes:        64 << 10,
		MaxNameBytes:        128,
		MaxPagesPerDiff:     4096,
		MaxDocIDBytes:       128,
		MaxTokenBytes:       8 << 10,
		MaxMessageBytes:     4 << 10,
		MaxPresenceBytes:    64 << 10,
		MaxPresencePeers:    256,
	}
}

// WithDefaults returns l with zero or negative fields replaced by their defaults.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	fill := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&l.MaxFrameBytes, d.MaxFrameBytes)
	fill(&l.MaxMutationsPerPush, d.MaxMutationsPerPush)
	fill(&l.MaxArgsBytes, d.MaxArgsBytes)
	fill(&l.MaxNameBytes, d.MaxNameBytes)
	fill(&l.MaxPagesPerDiff, d.MaxPagesPerDiff)
	fill(&l.MaxDocIDBytes, d.MaxDocIDBytes)
	fill(&l.MaxTokenBytes, d.MaxTokenBytes)
	fill(&l.MaxMessageBytes, d.MaxMessageBytes)
	fill(&l.MaxPresenceBytes, d.MaxPresenceBytes)
	fill(&l.MaxPresencePeers, d.MaxPresencePeers)
	return l
}
