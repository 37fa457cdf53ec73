//go:build !linux

package main

import "net"

// acceptQueued is Linux-only; elsewhere the kernel's queue is reset at close, as
// with a plain http.Server.Shutdown. The service runs on Linux in production.
func acceptQueued(net.Listener) ([]net.Conn, error) { return nil, nil }

// unread is Linux-only; elsewhere drainGrace alone covers bytes not yet read.
func unread(net.Conn) bool { return false }
