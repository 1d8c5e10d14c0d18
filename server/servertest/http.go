package servertest

import (
	"io"
	"net/http"
	"testing"
)

// Get fetches url and returns the response, its body read and closed, and
// the body; a request that fails fails tb.
func Get(tb testing.TB, url string) (*http.Response, []byte) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, b
}
