// Package mosquitto holds the shipped Mosquitto configuration (mosquitto.conf,
// acl) and, in its tests, the integration test that runs a real mosquitto
// with that configuration and certificates from ../gen-certs.sh.
package mosquitto
