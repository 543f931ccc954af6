package main

import "context"

func runToken(ctx context.Context, std stdio, args []string) error {
	return subcommand(ctx, std, "token", args, []command{
		{"mint", "sign a PG1 payment token", runTokenMint},
		{"inspect", "decode (and with --policy verify) any payment token", runTokenInspect},
		{"qr", "render a token as a QR code (PNG or terminal)", runTokenQR},
	})
}

func runPolicyKeygen(ctx context.Context, std stdio, args []string) error { return errNotBuilt }
func runTokenMint(ctx context.Context, std stdio, args []string) error    { return errNotBuilt }
func runTokenInspect(ctx context.Context, std stdio, args []string) error { return errNotBuilt }
func runTokenQR(ctx context.Context, std stdio, args []string) error      { return errNotBuilt }
