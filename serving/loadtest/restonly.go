//go:build loadtest_restonly

package main

import (
	"errors"

	"github.com/tfcat/tfcat/serving"
)

// grpcBuilt says that -api grpc is there: not in this build.
const grpcBuilt = false

var errNoGRPC = errors.New("built with -tags loadtest_restonly: no gRPC")

func startGRPC(*serving.Server, serving.Config) (string, func(), error) { return "", nil, errNoGRPC }

func grpcClient(string, workload, instance) (*client, error) { return nil, errNoGRPC }
