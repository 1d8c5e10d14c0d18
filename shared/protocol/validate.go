package protocol

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// validate checks the field rules of f and, if lim is not nil, its limits.
func validate(f Frame, lim *Limits) error {
	var set []string
	var err error
	if f.Hello != nil {
		set, err = append(set, "hello"), validateHello(f.Hello, lim)
	}
	if f.Push != nil {
		set, err = append(set, "push"), validatePush(f.Push, lim)
	}
	if f.Welcome != nil {
		set, err = append(set, "welcome"), validateWelcome(f.Welcome, lim)
	}
	if f.Diff != nil {
		set, err = append(set, "diff"), validateDiff(f.Diff, lim)
	}
	if f.Rejected != nil {
		set, err = append(set, "rejected"), validateRejected(f.Rejected, lim)
	}
	if f.Close != nil {
		set, err = append(set, "close"), validateClose(f.Close, lim)
	}
	if f.PresenceSet != nil {
		set, err = append(set, "presence_set"), validatePresenceSet(f.PresenceSet, lim)
	}
	if f.Presence != nil {
		set, err = append(set, "presence"), validatePresence(f.Presence, lim)
	}
	if f.PresenceRefused != nil {
		set, err = append(set, "presence_refused"), validatePresenceRefused(f.PresenceRefused, lim)
	}
	if f.PageRequest != nil {
		set, err = append(set, "page_request"), validatePageRequest(f.PageRequest)
	}
	if f.PageReply != nil {
		set, err = append(set, "page_reply"), validatePageReply(f.PageReply)
	}
	switch len(set) {
	case 0:
		return badf("no message set")
	case 1:
		if err != nil {
			return fmt.Errorf("%s: %w", set[0], err)
		}
		return nil
	default:
		return badf("%d messages set (%s), want 1", len(set), strings.Join(set, ", "))
	}
}

// checkString checks that s is valid UTF-8, non-empty if required, and at
// most limit bytes if lim is not nil.
func checkString(what, s string, required bool, lim *Limits, limit func(*Limits) int) error {
	if required && s == "" {
		return badf("%s is empty", what)
	}
	if lim != nil {
		if n := limit(lim); len(s) > n {
			return largef("%s is %d bytes, limit %d", what, len(s), n)
		}
	}
	if !utf8.ValidString(s) {
		return badf("%s is not valid UTF-8", what)
	}
	return nil
}

func maxNameBytes(l *Limits) int    { return l.MaxNameBytes }
func maxDocIDBytes(l *Limits) int   { return l.MaxDocIDBytes }
func maxTokenBytes(l *Limits) int   { return l.MaxTokenBytes }
func maxMessageBytes(l *Limits) int { return l.MaxMessageBytes }

func validateHello(h *Hello, lim *Limits) error {
	if h.Version == 0 {
		return badf("version is 0")
	}
	if err := checkString("doc id", h.DocID, true, lim, maxDocIDBytes); err != nil {
		return err
	}
	if err := checkString("client id", h.ClientID, true, lim, maxDocIDBytes); err != nil {
		return err
	}
	if err := checkString("secret", h.Secret, false, lim, maxDocIDBytes); err != nil {
		return err
	}
	if err := checkCapabilities(h.Capabilities, lim); err != nil {
		return err
	}
	if err := validateResume(h); err != nil {
		return err
	}
	if err := validateHeld(h); err != nil {
		return err
	}
	return checkString("token", h.Token, false, lim, maxTokenBytes)
}

func validatePush(p *Push, lim *Limits) error {
	if len(p.Mutations) == 0 {
		return badf("no mutations")
	}
	if lim != nil && len(p.Mutations) > lim.MaxMutationsPerPush {
		return largef("%d mutations, limit %d", len(p.Mutations), lim.MaxMutationsPerPush)
	}
	var prev uint64
	for i, m := range p.Mutations {
		if err := validateMutation(m, prev, lim); err != nil {
			return fmt.Errorf("mutation %d: %w", i, err)
		}
		prev = m.Seq
	}
	return nil
}

func validateMutation(m Mutation, prev uint64, lim *Limits) error {
	if m.Seq == 0 {
		return badf("seq is 0")
	}
	if m.Seq <= prev {
		return badf("seq %d not after %d", m.Seq, prev)
	}
	if err := checkString("name", m.Name, true, lim, maxNameBytes); err != nil {
		return err
	}
	if lim != nil && len(m.Args) > lim.MaxArgsBytes {
		return largef("args are %d bytes, limit %d", len(m.Args), lim.MaxArgsBytes)
	}
	return nil
}

func validateWelcome(w *Welcome, lim *Limits) error {
	if w.Version == 0 {
		return badf("version is 0")
	}
	if err := checkCapabilities(w.Capabilities, lim); err != nil {
		return err
	}
	return checkString("mutator hash", w.MutatorHash, false, lim, maxNameBytes)
}

func validateDiff(d *Diff, lim *Limits) error {
	if d.Stream != nil {
		return validateStream(d, d.Stream, lim)
	}
	if d.To <= d.From {
		return badf("to %d not after from %d", d.To, d.From)
	}
	if lim != nil && len(d.Pages) > lim.MaxPagesPerDiff {
		return largef("%d pages, limit %d", len(d.Pages), lim.MaxPagesPerDiff)
	}
	var prev uint32
	for i, p := range d.Pages {
		switch {
		case p.No == 0 || p.No > d.PageCount:
			return badf("page index %d: number %d not in 1..%d", i, p.No, d.PageCount)
		case p.No <= prev:
			return badf("page index %d: number %d not after %d", i, p.No, prev)
		case len(p.Data) != PageSize:
			return badf("page index %d: data is %d bytes, want %d", i, len(p.Data), PageSize)
		}
		prev = p.No
	}
	return nil
}

func validateRejected(r *Rejected, lim *Limits) error {
	if r.Seq == 0 {
		return badf("seq is 0")
	}
	return checkString("message", r.Message, false, lim, maxMessageBytes)
}

func validateClose(c *Close, lim *Limits) error {
	if err := checkString("code", c.Code, true, lim, maxNameBytes); err != nil {
		return err
	}
	return checkString("reason", c.Reason, false, lim, maxMessageBytes)
}
