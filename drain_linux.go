package main

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// acceptQueued takes every connection waiting in ln's accept queue, without
// waiting for more: accept4 on the raw socket, which the runtime keeps
// non-blocking, until it answers EAGAIN.
func acceptQueued(ln net.Listener) ([]net.Conn, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fds []int
	var acceptErr error
	err = raw.Control(func(fd uintptr) {
		for {
			nfd, _, err := syscall.Accept4(int(fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
			switch {
			case err == nil:
				fds = append(fds, nfd)
			case errors.Is(err, syscall.EINTR), errors.Is(err, syscall.ECONNABORTED):
			case errors.Is(err, syscall.EAGAIN):
				return
			default:
				acceptErr = os.NewSyscallError("accept4", err)
				return
			}
		}
	})
	var conns []net.Conn
	for _, fd := range fds {
		f := os.NewFile(uintptr(fd), "queued connection")
		c, ferr := net.FileConn(f)
		f.Close()
		if ferr != nil {
			acceptErr = errors.Join(acceptErr, ferr)
			continue
		}
		conns = append(conns, c)
	}
	return conns, errors.Join(err, acceptErr)
}

// unread reports whether the kernel holds bytes of conn that nobody has read yet.
func unread(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var pending bool
	raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		pending = err == nil && n > 0
	})
	return pending
}
