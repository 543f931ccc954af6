package main

import (
	"context"
	"errors"
)

// These commands are specified in DESIGN.md but not built yet; each says so
// rather than pretending to work.
var errNotBuilt = errors.New("not built yet: see the open issues")

func runAgent(ctx context.Context, std stdio, args []string) error { return errNotBuilt }
func runDemo(ctx context.Context, std stdio, args []string) error  { return errNotBuilt }
