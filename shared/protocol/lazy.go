package protocol

// CapLazy is the capability a client names in Hello.Capabilities when it
// replicates the document lazily: it holds only the pages it has read, and
// asks for the others (PageRequest) as its queries need them. The
// coordinator then sends, in each diff, only the changed pages the client
// holds (the pages Hello.Held names and the pages it has sent the client on
// this connection), never a delta; a page the client does not hold it
// fetches again when it needs it. The first diff also carries page 1, which
// every query reads.
const CapLazy = "lazy"

// MaxPagesPerRequest bounds PageRequest.Pages.
const MaxPagesPerRequest = 256

// MaxHeldBytes bounds Hello.Held: a bitmap of 8 Mi pages, a 32 GiB
// document.
const MaxHeldBytes = 1 << 20

// PageRequest asks the coordinator for pages of the document as of the
// client's snapshot, at LSN. Only a client granted CapLazy sends it.
type PageRequest struct {
	// ID is the client's number for the request, echoed in the reply.
	ID uint64 `cbor:"1,keyasint,omitempty"`
	// LSN is the client's snapshot LSN: the pages must be as of it.
	LSN uint64 `cbor:"2,keyasint,omitempty"`
	// Pages lists page numbers, ascending, unique, each from 1.
	Pages []uint32 `cbor:"3,keyasint,omitempty"`
}

// PageReply answers a PageRequest. Pages holds the requested pages that
// have not changed since the request's LSN (so each is as the client's
// snapshot has it, and stays so until a diff carries a newer copy: from
// now on the coordinator counts them as held by the client). Stale lists
// those that changed since, or lie beyond the page count now: the client
// can read them only once its snapshot has reached LSN, the coordinator's
// LSN when it read them, and then asks again.
type PageReply struct {
	ID    uint64   `cbor:"1,keyasint,omitempty"`
	LSN   uint64   `cbor:"2,keyasint,omitempty"`
	Pages []Page   `cbor:"3,keyasint,omitempty"`
	Stale []uint32 `cbor:"4,keyasint,omitempty"`
}

// HeldHas reports whether the held bitmap (Hello.Held) has page no: bit
// (no-1)%8, from the least significant, of byte (no-1)/8.
func HeldHas(held []byte, no uint32) bool {
	i := (no - 1) / 8
	return no > 0 && int(i) < len(held) && held[i]&(1<<((no-1)%8)) != 0
}

// HeldBitmap returns the held bitmap of the pages nos.
func HeldBitmap(nos []uint32) []byte {
	var out []byte
	for _, no := range nos {
		if no == 0 {
			continue
		}
		i := int((no - 1) / 8)
		for len(out) <= i {
			out = append(out, 0)
		}
		out[i] |= 1 << ((no - 1) % 8)
	}
	return out
}

func validateHeld(h *Hello) error {
	if len(h.Held) > MaxHeldBytes {
		return largef("held bitmap is %d bytes, limit %d", len(h.Held), MaxHeldBytes)
	}
	if len(h.Held) > 0 && !HasCapability(h.Capabilities, CapLazy) {
		return badf("held pages without the %s capability", CapLazy)
	}
	return nil
}

func checkPageNumbers(nos []uint32) error {
	var prev uint32
	for i, no := range nos {
		if no == 0 || no <= prev {
			return badf("page index %d: number %d not after %d", i, no, prev)
		}
		prev = no
	}
	return nil
}

func validatePageRequest(r *PageRequest) error {
	if r.ID == 0 {
		return badf("id is 0")
	}
	if len(r.Pages) == 0 {
		return badf("no pages")
	}
	if len(r.Pages) > MaxPagesPerRequest {
		return largef("%d pages, limit %d", len(r.Pages), MaxPagesPerRequest)
	}
	return checkPageNumbers(r.Pages)
}

func validatePageReply(r *PageReply) error {
	if r.ID == 0 {
		return badf("id is 0")
	}
	if n := len(r.Pages) + len(r.Stale); n > MaxPagesPerRequest {
		return largef("%d pages, limit %d", n, MaxPagesPerRequest)
	}
	var prev uint32
	for i, p := range r.Pages {
		switch {
		case p.No == 0 || p.No <= prev:
			return badf("page index %d: number %d not after %d", i, p.No, prev)
		case len(p.Data) != PageSize:
			return badf("page index %d: data is %d bytes, want %d", i, len(p.Data), PageSize)
		case p.Delta:
			return badf("page index %d: a delta in a page reply", i)
		}
		prev = p.No
	}
	return checkPageNumbers(r.Stale)
}
