package mqttconn

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{Config{Broker: "tcp://127.0.0.1:1883"}, ""},
		{Config{Broker: "ssl://broker:8883", CertFile: "c.pem", KeyFile: "k.pem"}, ""},
		{Config{}, "broker: required"},
		{Config{Broker: "http://broker"}, `scheme "http"`},
		{Config{Broker: "tcp://"}, "has no host"},
		{Config{Broker: "tcp://b:1883", CertFile: "c.pem"}, "give both or neither"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.cfg, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: error %v, want one containing %q", tt.cfg, err, tt.want)
		}
	}
}

func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.crt")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	if cfg, err := (Config{Broker: "tcp://b:1"}).TLS(); cfg != nil || err != nil {
		t.Fatalf("no TLS files: %v, %v; want nil, nil", cfg, err)
	}
	if _, err := (Config{CAFile: notPEM}).TLS(); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("bad CA file: %v", err)
	}
	if _, err := (Config{CAFile: filepath.Join(dir, "missing")}).TLS(); err == nil {
		t.Fatal("missing CA file accepted")
	}
	if _, err := (Config{CertFile: notPEM, KeyFile: notPEM}).TLS(); err == nil || !strings.Contains(err.Error(), "client certificate") {
		t.Fatalf("bad client certificate: %v", err)
	}
}
