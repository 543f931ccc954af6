package brokertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a throwaway CA with one server certificate (for 127.0.0.1) and one
// client certificate, written as PEM files for code that takes paths.
type PKI struct {
	CAFile, ServerCert, ServerKey, ClientCert, ClientKey string
	// ServerTLS requires and verifies client certificates from the CA.
	ServerTLS *tls.Config
	// CAPool holds the CA, for servers that verify client certificates.
	CAPool *x509.CertPool

	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
}

// Client makes another client certificate of the CA, for cn.
func (p *PKI) Client(tb testing.TB, cn string) tls.Certificate {
	tb.Helper()
	key, leaf, der := makeCert(tb, p.caKey, p.caCert, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// NewPKI makes the files in dir; clientCN is the client certificate's CN
// (the MQTT username with use_identity_as_username, e.g. display/S001).
func NewPKI(tb testing.TB, dir, clientCN string) *PKI {
	tb.Helper()
	caKey, caCert, caDER := makeCert(tb, nil, nil, &x509.Certificate{
		Subject: pkix.Name{CommonName: "posguard test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	})
	p := &PKI{
		CAFile:     filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client.key"),
	}
	writePEM(tb, p.CAFile, "CERTIFICATE", caDER)
	srvKey, _, srvDER := makeCert(tb, caKey, caCert, &x509.Certificate{
		Subject: pkix.Name{CommonName: "broker"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	})
	writePEM(tb, p.ServerCert, "CERTIFICATE", srvDER)
	writeKey(tb, p.ServerKey, srvKey)
	p.caKey, p.caCert = caKey, caCert
	cli := p.Client(tb, clientCN)
	writePEM(tb, p.ClientCert, "CERTIFICATE", cli.Certificate[0])
	writeKey(tb, p.ClientKey, cli.PrivateKey.(*ecdsa.PrivateKey))

	pair, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	p.CAPool = pool
	p.ServerTLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	return p
}

func makeCert(tb testing.TB, parentKey *ecdsa.PrivateKey, parent, tmpl *x509.Certificate) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return key, cert, der
}

func writeKey(tb testing.TB, path string, key *ecdsa.PrivateKey) {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	writePEM(tb, path, "PRIVATE KEY", der)
}

func writePEM(tb testing.TB, path, typ string, der []byte) {
	tb.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
}
