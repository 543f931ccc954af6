package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func policyVersion(v int64, digest string) PolicyVersion {
	return PolicyVersion{Version: v, Name: "chain-default", Scope: "all", KID: "hq-1", Digest: digest,
		PushedBy: "alice (console)", Source: PolicyViaHQ, PushedAt: t0.Add(time.Duration(v) * time.Minute),
		IssuedAt: t0, ExpiresAt: t0.Add(720 * time.Hour),
		Bundle: []byte{0xd2, 0x84, byte(v)}, Document: []byte(fmt.Sprintf(`{"apiVersion":"posguard/v1","metadata":{"version":%d}}`, v))}
}

func versions(vs []PolicyVersion) []int64 {
	var out []int64
	for _, v := range vs {
		out = append(out, v.Version)
	}
	return out
}

func TestPolicyVersions(t *testing.T) {
	backends(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		if vs, err := s.PolicyVersions(ctx, PolicyQuery{}); err != nil || vs == nil || len(vs) != 0 {
			t.Fatalf("empty store: %v %v, want [] (not null)", vs, err)
		}
		// Out of order on purpose: the listing orders by version.
		for _, v := range []int64{3, 1, 7, 5} {
			if ins, err := s.SavePolicy(ctx, policyVersion(v, fmt.Sprint("d", v))); err != nil || !ins {
				t.Fatalf("save v%d: %v %v", v, ins, err)
			}
		}
		// The same bundle again (HQ sees its own push on the retained
		// topic) is a repeat and keeps the first record's who.
		again := policyVersion(5, "d5")
		again.PushedBy, again.Source = "hq-1 (cli push)", PolicyViaBroker
		if ins, err := s.SavePolicy(ctx, again); err != nil || ins {
			t.Fatalf("repeat: %v %v, want not inserted, no error", ins, err)
		}
		if _, err := s.SavePolicy(ctx, policyVersion(5, "other")); !errors.Is(err, ErrPolicyConflict) {
			t.Fatalf("another bundle as v5: %v, want ErrPolicyConflict", err)
		}
		all, err := s.PolicyVersions(ctx, PolicyQuery{})
		if err != nil || !slices.Equal(versions(all), []int64{7, 5, 3, 1}) {
			t.Fatalf("all: %v %v", versions(all), err)
		}
		if all[1].PushedBy != "alice (console)" || all[1].Source != PolicyViaHQ || all[1].Bundle != nil || all[1].Document != nil {
			t.Errorf("listed v5 = %+v: want the first record, without bundle and document", all[1])
		}
		for _, c := range []struct {
			q    PolicyQuery
			want []int64
		}{
			{PolicyQuery{Limit: 2}, []int64{7, 5}},
			{PolicyQuery{Before: 5, Limit: 2}, []int64{3, 1}},
			{PolicyQuery{Before: 6}, []int64{5, 3, 1}},
			{PolicyQuery{Before: 100}, []int64{7, 5, 3, 1}},
			{PolicyQuery{Before: 1}, nil},
		} {
			got, err := s.PolicyVersions(ctx, c.q)
			if err != nil || !slices.Equal(versions(got), c.want) {
				t.Errorf("%+v: %v %v, want %v", c.q, versions(got), err, c.want)
			}
		}
		v, err := s.PolicyVersion(ctx, 3)
		want := policyVersion(3, "d3")
		if err != nil || string(v.Document) != string(want.Document) || !slices.Equal(v.Bundle, want.Bundle) ||
			!v.PushedAt.Equal(want.PushedAt) || v.KID != "hq-1" || v.Name != "chain-default" {
			t.Fatalf("v3 = %+v %v", v, err)
		}
		if _, err := s.PolicyVersion(ctx, 4); !errors.Is(err, ErrPolicyNotFound) {
			t.Errorf("v4: %v, want ErrPolicyNotFound", err)
		}
	})
}
