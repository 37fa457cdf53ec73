package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// outcome is what one request of the load saw.
type outcome struct {
	start   time.Duration // when it was sent, since the load began
	latency time.Duration
	region  string // the region that answered 200; empty on failure
	failure string // the kind of failure; empty on success
	// client is the index of the URL it was sent to (the clients near which region).
	client int
	// servedBy and revision are the region and revision the answer names,
	// whatever its status (a failing revision's 500 names them too); empty when
	// the answer names none.
	servedBy, revision string
}

// openLoop sends GET to urls at rate requests a second in all until ctx ends,
// taking the URLs in turn (so each gets an equal share), each request on its
// schedule whether or not earlier ones have been answered (an open loop: a
// stalled backend does not slow the load down, as it would not slow down real
// clients). It returns every outcome once the last request has ended.
func openLoop(ctx context.Context, urls []string, rate int, began time.Time) []outcome {
	client := newClient()
	defer client.CloseIdleConnections()
	interval := time.Second / time.Duration(rate)
	var (
		mu       sync.Mutex
		outcomes []outcome
		wg       sync.WaitGroup
	)
	for i := 0; ; i++ {
		next := began.Add(time.Duration(i) * interval)
		select {
		case <-ctx.Done():
			wg.Wait()
			return outcomes
		case <-time.After(time.Until(next)):
		}
		wg.Go(func() {
			o := get(client, urls[i%len(urls)])
			o.start, o.client = next.Sub(began), i%len(urls)
			mu.Lock()
			outcomes = append(outcomes, o)
			mu.Unlock()
		})
	}
}

// newClient returns the load's client: keep-alive, as browsers are, with room
// for every request a stalled second can leave open.
func newClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: 512,
			DisableCompression:  true,
		},
	}
}

// get sends one request and classifies what came back.
func get(client *http.Client, url string) outcome {
	start := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		return outcome{latency: time.Since(start), failure: failureKind(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	o := outcome{latency: time.Since(start)}
	var answer struct {
		Region   string `json:"region"`
		Revision string `json:"revision"`
	}
	if err == nil && json.Unmarshal(body, &answer) == nil {
		o.servedBy, o.revision = answer.Region, answer.Revision
	}
	switch {
	case err != nil:
		o.failure = failureKind(err)
	case resp.StatusCode != http.StatusOK:
		o.failure = fmt.Sprintf("status %d", resp.StatusCode)
	case answer.Region == "":
		o.failure = "answer without a region"
	default:
		o.region = answer.Region
	}
	return o
}

// failureKind names an error by its kind, so that failures group.
func failureKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed (EOF)"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return err.Error()
}
