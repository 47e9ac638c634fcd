// Package grpctest serves a gRPC server on loopback for a test and dials it:
// the setup the serving packages' gRPC tests share. It is a package of its
// own, not part of testenv, so that only the tests that use gRPC link it.
package grpctest

import (
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Serve serves gs on a free loopback port and returns a client connection to
// it and a stop function that closes the connection and stops gs; the test
// defers stop where the server must stop (before what it serves closes).
func Serve(t testing.TB, gs *grpc.Server) (conn *grpc.ClientConn, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(ln)
	conn, err = grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		gs.Stop()
		t.Fatal(err)
	}
	return conn, func() {
		conn.Close()
		gs.Stop()
	}
}
