package main

import "context"

func runPolicy(ctx context.Context, std stdio, args []string) error {
	return subcommand(ctx, std, "policy", args, []command{
		{"keygen", "make a signing key pair and its policy issuers snippet", runPolicyKeygen},
		{"lint", "validate a policy file and report every problem", runPolicyLint},
		{"eval", "decide one request with a policy and print the decision", runPolicyEval},
	})
}

func runPolicyLint(ctx context.Context, std stdio, args []string) error { return errNotBuilt }
func runPolicyEval(ctx context.Context, std stdio, args []string) error { return errNotBuilt }
