package cli

import "testing"

// TestParseOrigin: --allowed-origins takes origins as browsers send them,
// and refuses what could never match one (a path, no scheme).
func TestParseOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"*":                       "*",
		" http://127.0.0.1:4173 ": "http://127.0.0.1:4173",
		"https://app.example/":    "https://app.example",
	} {
		if got, err := parseOrigin(in); err != nil || got != want {
			t.Errorf("parseOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "app.example", "127.0.0.1:4173", "https://app.example/app", "ftp://x", "https://app.example?x=1"} {
		if got, err := parseOrigin(in); err == nil {
			t.Errorf("parseOrigin(%q) = %q, want an error", in, got)
		}
	}
}
