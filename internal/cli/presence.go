package cli

import (
	"flag"

	"github.com/sqlsync-go/sqlsync/server"
)

// presenceFlags are serve's presence settings (server.PresenceConfig).
type presenceFlags struct {
	cfg     server.PresenceConfig
	on      bool
	readers bool
}

func (p *presenceFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&p.on, "presence", true, "let clients publish presence (who is looking, what they edit) to the other clients of a document; false grants it to none")
	fs.IntVar(&p.cfg.MaxBytes, "presence-max-bytes", server.DefaultPresenceMaxBytes, "largest presence state (JSON) a client may publish; larger ones are refused with a reason (at most 65536)")
	fs.DurationVar(&p.cfg.Timeout, "presence-timeout", server.DefaultPresenceTimeout, "drop a presence its client has not refreshed for this long (clients re-send theirs every third of it)")
	fs.Float64Var(&p.cfg.Rate, "presence-rate", server.DefaultPresenceRate, "presence updates per second one connection may send; more are refused")
	fs.IntVar(&p.cfg.Burst, "presence-burst", server.DefaultPresenceBurst, "presence updates one connection may send at once, above --presence-rate")
	fs.IntVar(&p.cfg.MaxPeers, "presence-max-peers", server.DefaultPresenceMaxPeers, "most presences in one document, and so sent to a client at once (at most 256)")
	fs.BoolVar(&p.readers, "presence-readers", true, "let read-only tokens publish presence (they always see the others')")
}

// apply sets cfg.Presence from the flags.
func (p *presenceFlags) apply(cfg *server.Config) {
	cfg.Presence = p.cfg
	cfg.Presence.Disabled = !p.on
	cfg.Presence.DenyReaders = !p.readers
}
