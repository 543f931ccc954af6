// Package wire is the MQTT contract between registers, displays and HQ: the
// topic names, the ids allowed in them and the JSON payloads. Every other part
// imports it so a topic or field is spelled in exactly one place. It imports
// nothing of posguard, so a display using it does not pull in the policy
// engine.
package wire

import (
	"fmt"
	"strings"
)

// Prefix is the root of every posguard topic; the version lets a future
// contract live beside this one on the same broker.
const Prefix = "posguard/v1"

// Fixed topics.
const (
	// DenylistDelta carries signed denylist deltas, QoS1, not retained.
	DenylistDelta = Prefix + "/denylist/delta"
	// DenylistSnapshot carries the signed full denylist, retained.
	DenylistSnapshot = Prefix + "/denylist/snapshot"
	// AllowlistDelta and AllowlistSnapshot carry the allowlist the same
	// way: accounts a case found legitimate, each with an expiry.
	AllowlistDelta    = Prefix + "/allowlist/delta"
	AllowlistSnapshot = Prefix + "/allowlist/snapshot"
	// PolicyFilter matches every policy scope.
	PolicyFilter = Prefix + "/policy/+"
)

// ScopeAll is the policy scope every store reads.
const ScopeAll = "all"

// Kinds of the per-register topics posguard/v1/reg/{s}/{r}/{kind}.
const (
	KindEvents = "events"
	KindAlerts = "alerts"
	KindStatus = "status"
	KindCmd    = "cmd"
)

// HQUsername is the certificate CN (and so the MQTT username and client
// id) of a single HQ. Further HQ identities (instances sharing the load,
// policy push) are "hq-NAME"; see IsHQUsername.
const HQUsername = "hq"

// IsHQUsername reports whether u is an HQ identity: "hq", or "hq-" and a
// name by the rules of a register id. Brokers grant these every posguard
// topic and HQ's shared subscriptions; since register and display
// usernames always contain a slash, none of them can be mistaken for HQ.
func IsHQUsername(u string) bool {
	if u == HQUsername {
		return true
	}
	name, ok := strings.CutPrefix(u, HQUsername+"-")
	return ok && validateID(name) == nil
}

// displayUserPrefix starts a display's username: display/{store}.
const displayUserPrefix = "display"

// MaxIDLen bounds a store or register id so topics and usernames stay short.
const MaxIDLen = 32

// hqStore is the store of HQ's own events (event.HQStore): no register's.
const hqStore = "hq"

// ValidateStore checks a store id. Store ids become topic levels and half of a
// certificate CN, so they are limited to [A-Za-z0-9_-] and must not be one of
// the names that would collide with another topic or username: "all" (the
// policy scope of every store), "display" and "bridge" (display/{store} is a
// display's username and bridge/{store} a store bridge's, so a store called
// display or bridge would make its registers look like them to the broker's
// ACL) and "hq".
func ValidateStore(id string) error {
	if err := validateID(id); err != nil {
		return fmt.Errorf("store id %q: %w", id, err)
	}
	if id == ScopeAll || id == displayUserPrefix || id == bridgeUserPrefix || id == hqStore {
		return fmt.Errorf("store id %q: reserved name", id)
	}
	return nil
}

// ValidateRegister checks a register id; the charset and length are those of
// a store id.
func ValidateRegister(id string) error {
	if err := validateID(id); err != nil {
		return fmt.Errorf("register id %q: %w", id, err)
	}
	return nil
}

// validateID accepts 1..MaxIDLen of [A-Za-z0-9_-]. Dots are left out so an id
// can never be "." or "..", which would be unpleasant in file names built
// from ids (certificates, bbolt files).
func validateID(id string) error {
	if id == "" {
		return fmt.Errorf("empty")
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("longer than %d bytes", MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return fmt.Errorf("byte %q at %d not allowed (want A-Z a-z 0-9 - _)", c, i)
		}
	}
	return nil
}

// ValidateScope checks a policy scope: "all" or a store id.
func ValidateScope(scope string) error {
	if scope == ScopeAll {
		return nil
	}
	if err := validateID(scope); err != nil {
		return fmt.Errorf("policy scope %q: %w", scope, err)
	}
	if scope == displayUserPrefix {
		return fmt.Errorf("policy scope %q: reserved name", scope)
	}
	return nil
}

// The builders below do not validate: ids are checked once where they enter
// the program (configuration, flags, ParseRegTopic), not on every publish.

// PolicyTopic is the retained topic of the policy bundle for scope, "all" or a
// store id.
func PolicyTopic(scope string) string { return Prefix + "/policy/" + scope }

// RegTopic is posguard/v1/reg/{store}/{reg}/{kind}.
func RegTopic(store, reg, kind string) string {
	return Prefix + "/reg/" + store + "/" + reg + "/" + kind
}

// EventsTopic carries decision events of one register, QoS1.
func EventsTopic(store, reg string) string { return RegTopic(store, reg, KindEvents) }

// AlertsTopic carries review/deny alerts of one register, QoS1.
func AlertsTopic(store, reg string) string { return RegTopic(store, reg, KindAlerts) }

// StatusTopic carries the retained status of one register and its last will.
func StatusTopic(store, reg string) string { return RegTopic(store, reg, KindStatus) }

// CmdTopic carries commands for one register (resolve, from displays) and its
// resync requests (to HQ).
func CmdTopic(store, reg string) string { return RegTopic(store, reg, KindCmd) }

// AckTopic carries HQ's acknowledgements of one register's stored event ids.
// It sits outside posguard/v1/reg/ so the broker ACL that lets a register
// write its own reg/ subtree does not let it forge acks for itself.
func AckTopic(store, reg string) string { return Prefix + "/ack/" + store + "/" + reg }

// Username is a register's MQTT username, certificate CN and client id:
// {store}/{reg}. The ACL pattern posguard/v1/reg/%u/# confines it.
func Username(store, reg string) string { return store + "/" + reg }

// ClientID is the stable MQTT client id of a register; stable so a
// CleanSession=false session survives reconnects.
func ClientID(store, reg string) string { return Username(store, reg) }

// DisplayUsername is a store display's MQTT username and certificate CN.
func DisplayUsername(store string) string { return displayUserPrefix + "/" + store }

// bridgeUserPrefix starts a store bridge's username: bridge/{store}.
const bridgeUserPrefix = "bridge"

// BridgeUsername is the MQTT username and certificate CN of a store
// broker's bridge to HQ's broker (scripts/mosquitto/store-bridge.conf): it
// publishes at HQ for every register of its store and reads their acks.
func BridgeUsername(store string) string { return bridgeUserPrefix + "/" + store }

// SharePrefix returns "$share/GROUP/" for a non-empty group, or "" so a
// single HQ subscribes plainly.
func SharePrefix(group string) string {
	if group == "" {
		return ""
	}
	return "$share/" + group + "/"
}

// ValidateShareGroup checks an HQ share group name; it becomes a topic level.
func ValidateShareGroup(group string) error {
	if group == "" {
		return nil
	}
	if err := validateID(group); err != nil {
		return fmt.Errorf("share group %q: %w", group, err)
	}
	return nil
}

// regFilter is posguard/v1/reg/+/+/{kind}.
func regFilter(kind string) string { return Prefix + "/reg/+/+/" + kind }

// HQEventsFilter, HQAlertsFilter and HQCmdFilter are the load-split
// subscriptions of HQ: with a share group each message goes to one HQ
// instance of the group.
func HQEventsFilter(group string) string { return SharePrefix(group) + regFilter(KindEvents) }

// HQAlertsFilter: see HQEventsFilter.
func HQAlertsFilter(group string) string { return SharePrefix(group) + regFilter(KindAlerts) }

// HQCmdFilter lets HQ hear resync requests (and see resolutions).
func HQCmdFilter(group string) string { return SharePrefix(group) + regFilter(KindCmd) }

// HQStatusFilter is never shared: brokers do not hand retained messages to
// shared subscriptions, and every HQ instance needs the whole fleet's status
// at start. Statuses are small and once a minute, so the duplication is cheap.
const HQStatusFilter = Prefix + "/reg/+/+/" + KindStatus

// HQFilters lists every subscription of an HQ instance.
func HQFilters(group string) []string {
	return []string{HQEventsFilter(group), HQAlertsFilter(group), HQCmdFilter(group), HQStatusFilter}
}

// StoreAlertsTopic carries the alerts HQ's chain rules raise about a store
// (event.Event with a Chain), to the store's displays; only HQ publishes.
func StoreAlertsTopic(store string) string { return Prefix + "/store/" + store + "/alerts" }

// DisplayFilters are the subscriptions of a store display: the alerts and the
// status of every register of its store, and HQ's alerts about the store.
func DisplayFilters(store string) []string {
	return []string{
		Prefix + "/reg/" + store + "/+/" + KindAlerts,
		Prefix + "/reg/" + store + "/+/" + KindStatus,
		StoreAlertsTopic(store),
	}
}

// AgentSubscriptions are a register's subscriptions with the QoS it asks
// for each: AgentFilters and its store's facts.
//
// Only its commands (a manager's resolve from the display) and the store's
// facts are QoS 1 in the register's persistent session, the messages a
// broker must keep for it while it is away. Policy, denylist and allowlist
// are QoS 0: each has a retained message that the register receives again
// at every connect (it always subscribes anew), and a delta that does not
// follow its list makes it ask HQ for a resync, so nothing queued in the
// session would add to what the retained state gives. Acks are QoS 0 too:
// an event not acked is sent again and HQ acks it again. On a NATS cluster
// every QoS 1 subscription of a persistent session is a JetStream consumer
// replicated on three nodes (DESIGN "Clustered broker"); two per register
// instead of nine is what lets a cluster carry a chain's fleet.
func AgentSubscriptions(store, reg string) map[string]byte {
	subs := make(map[string]byte, 9)
	for _, f := range AgentFilters(store, reg) {
		subs[f] = 0
	}
	subs[CmdTopic(store, reg)] = 1
	subs[FactsFilter(store)] = 1
	return subs
}

// AgentFilters are the subscriptions of a register but its store's facts:
// both policy scopes that can cover it, the denylist, the allowlist, its
// commands and its acks.
func AgentFilters(store, reg string) []string {
	return []string{
		PolicyTopic(ScopeAll),
		PolicyTopic(store),
		DenylistDelta,
		DenylistSnapshot,
		AllowlistDelta,
		AllowlistSnapshot,
		CmdTopic(store, reg),
		AckTopic(store, reg),
	}
}

// ParseRegTopic splits posguard/v1/reg/{s}/{r}/{kind}. It rejects anything
// else, wildcards and ids that ValidateStore/ValidateRegister refuse, so a
// caller can trust the ids it gets back.
func ParseRegTopic(topic string) (store, reg, kind string, err error) {
	rest, ok := strings.CutPrefix(topic, Prefix+"/reg/")
	if !ok {
		return "", "", "", fmt.Errorf("topic %q: not under %s/reg/", topic, Prefix)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("topic %q: want %s/reg/{store}/{register}/{kind}, got %d levels after reg/", topic, Prefix, len(parts))
	}
	store, reg, kind = parts[0], parts[1], parts[2]
	if err := ValidateStore(store); err != nil {
		return "", "", "", fmt.Errorf("topic %q: %w", topic, err)
	}
	if err := ValidateRegister(reg); err != nil {
		return "", "", "", fmt.Errorf("topic %q: %w", topic, err)
	}
	switch kind {
	case KindEvents, KindAlerts, KindStatus, KindCmd:
	default:
		return "", "", "", fmt.Errorf("topic %q: unknown kind %q (want events, alerts, status or cmd)", topic, kind)
	}
	return store, reg, kind, nil
}

// ParseAckTopic splits posguard/v1/ack/{s}/{r}.
func ParseAckTopic(topic string) (store, reg string, err error) {
	rest, ok := strings.CutPrefix(topic, Prefix+"/ack/")
	if !ok {
		return "", "", fmt.Errorf("topic %q: not under %s/ack/", topic, Prefix)
	}
	store, reg, ok = strings.Cut(rest, "/")
	if !ok || strings.Contains(reg, "/") {
		return "", "", fmt.Errorf("topic %q: want %s/ack/{store}/{register}", topic, Prefix)
	}
	if err := ValidateStore(store); err != nil {
		return "", "", fmt.Errorf("topic %q: %w", topic, err)
	}
	if err := ValidateRegister(reg); err != nil {
		return "", "", fmt.Errorf("topic %q: %w", topic, err)
	}
	return store, reg, nil
}

// ParsePolicyTopic returns the scope of posguard/v1/policy/{scope}.
func ParsePolicyTopic(topic string) (scope string, err error) {
	scope, ok := strings.CutPrefix(topic, Prefix+"/policy/")
	if !ok {
		return "", fmt.Errorf("topic %q: not under %s/policy/", topic, Prefix)
	}
	if err := ValidateScope(scope); err != nil {
		return "", fmt.Errorf("topic %q: %w", topic, err)
	}
	return scope, nil
}
