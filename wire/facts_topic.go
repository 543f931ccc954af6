package wire

import (
	"fmt"
	"strings"
)

// The store-scoped topic family: posguard/v1/store/{s}/facts/{r} carries the
// facts register r of store s shares with the other registers of its store
// (spent one-time tokens, EMV counters, the accounts and amounts of its
// sales), QoS 1, not retained. A register publishes only on its own topic
// and reads only its own store's; HQ reads every store's (the broker bridge
// of a store forwards them). The payload is Facts (facts.go).

// FactsTopic is the topic register reg of store publishes its facts on.
func FactsTopic(store, reg string) string { return Prefix + "/store/" + store + "/facts/" + reg }

// FactsFilter matches the facts of every register of store.
func FactsFilter(store string) string { return Prefix + "/store/" + store + "/facts/+" }

// HQFactsFilter matches every store's facts.
const HQFactsFilter = Prefix + "/store/+/facts/+"

// ParseFactsTopic splits posguard/v1/store/{s}/facts/{r}, refusing anything
// else, wildcards and ids ValidateStore/ValidateRegister refuse.
func ParseFactsTopic(topic string) (store, reg string, err error) {
	rest, ok := strings.CutPrefix(topic, Prefix+"/store/")
	if !ok {
		return "", "", fmt.Errorf("topic %q: not under %s/store/", topic, Prefix)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[1] != "facts" {
		return "", "", fmt.Errorf("topic %q: want %s/store/{store}/facts/{register}", topic, Prefix)
	}
	store, reg = parts[0], parts[2]
	if err := ValidateStore(store); err != nil {
		return "", "", fmt.Errorf("topic %q: %w", topic, err)
	}
	if err := ValidateRegister(reg); err != nil {
		return "", "", fmt.Errorf("topic %q: %w", topic, err)
	}
	return store, reg, nil
}
