// Package nats holds the shipped NATS cluster configuration generator
// (gen-cluster.sh) and, in its tests, the integration test that runs three
// real nats-server processes with what it generates.
package nats
