package ha

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/mfsha/mfsha/deploy/lab"
)

// Endpoint GETs path (e.g. "/master") from the HTTP address of the node on host, from inside
// host, and returns the status code and body.
func Endpoint(ctx context.Context, l *lab.Lab, host, path string) (int, []byte, error) {
	client := &http.Client{Transport: &http.Transport{DialContext: l.Dialer(host), DisableKeepAlives: true}}
	url := "http://" + NodeMetricsAddr(l, host) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("lab %s: GET %s on %s: %w", l.Name(), url, host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("lab %s: GET %s on %s: %w", l.Name(), url, host, err)
	}
	return resp.StatusCode, body, nil
}
