package main

import "context"

func runScannerSim(ctx context.Context, std stdio, args []string) error { return errNotBuilt }
func runPorts(ctx context.Context, std stdio, args []string) error      { return errNotBuilt }
