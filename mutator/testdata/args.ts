// A test mutator for the SDK's JSON args: "decode" decodes its args with
// the Decoder and records what it got, so the Go test can compare it with
// what Go's encoding/json (package jsonargs, as the Go SDK uses) makes of
// the same bytes.
import { Args, Decoder, Tx, boolean, handle, int, migrate, real, text } from "@sqlsync-go/mutator";

migrate(`CREATE TABLE got(s TEXT, i INTEGER, f REAL, has_f INTEGER, b INTEGER, n INTEGER, o TEXT)`);

class Fields extends Args {
  s: string = "";
  i: i64 = 0;
  f: f64 = 0;
  hasF: bool = false;
  b: bool = false;
  n: i32 = 0;
  o: string = "";

  decode(d: Decoder): void {
    this.s = d.string("s");
    this.i = d.int("i");
    this.f = d.number("f");
    this.hasF = d.has("f");
    this.b = d.bool("b");
    this.n = d.array("a").length;
    this.o = d.object("o").string("s");
  }
}

handle<Fields>("decode", (tx: Tx, a: Fields): Error | null =>
  tx.exec(`INSERT INTO got VALUES (?, ?, ?, ?, ?, ?, ?)`, [
    text(a.s), int(a.i), real(a.f), boolean(a.hasF), boolean(a.b), int(a.n), text(a.o),
  ]).error,
);
