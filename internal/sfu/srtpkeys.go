package sfu

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"sync"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/srtp/v3"
)

// The SRTP keys of a connection, through pion's public API only.
// pion does not hand out a connection's SRTP keys, but its SettingEngine
// lets the process see the two halves of what they are made of: the DTLS
// key log gives the client random and the master secret, and the
// ServerHello hook (called when this server sends its ServerHello) gives
// the server random, the cipher suite (the PRF's hash) and the SRTP
// protection profile chosen. The keys are then the RFC 5705 exporter, as
// dtls.State.ExportKeyingMaterial computes it. Only a connection on which
// the server is the DTLS server sees both halves (the hook runs on the
// server's own ServerHello); anything else leaves the connection on pion's
// write path (srtpwrite.go) or read path (srtpread.go).

// dtlsSRTPLabel is RFC 5764's exporter label.
const dtlsSRTPLabel = "EXTRACTOR-dtls_srtp"

var (
	errKeysIncomplete = errors.New("sfu: SRTP keys not known for this connection")
)

// srtpKeys are the keys of one connection's SRTP: the server's own (it
// encrypts with them) and the peer's (it decrypts what the peer sends).
// Secret: kept in memory only, never logged or formatted.
type srtpKeys struct {
	profile               srtp.ProtectionProfile
	key, salt             []byte // the server's
	remoteKey, remoteSalt []byte // the peer's
}

// keyCatcher collects one DTLS handshake's key material from the key log
// writer and the ServerHello hook of the connection's own SettingEngine.
type keyCatcher struct {
	mu           sync.Mutex
	server       bool // a ServerHello of ours was seen
	serverRandom [handshake.RandomLength]byte
	suite        uint16
	profile      srtp.ProtectionProfile
	profileOK    bool
	logged       bool // a key log line was seen
	clientRandom [handshake.RandomLength]byte
	master       []byte
	keys         *srtpKeys // derived once, then the master secret is wiped
}

// serverHello is the SettingEngine's ServerHello hook: it records and
// returns the message unchanged.
func (k *keyCatcher) serverHello(m handshake.MessageServerHello) handshake.Message {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.server = true
	k.serverRandom = m.Random.MarshalFixed()
	k.suite = 0
	if m.CipherSuiteID != nil {
		k.suite = *m.CipherSuiteID
	}
	k.profileOK = false
	for _, e := range m.Extensions {
		u, ok := e.(*extension.UseSRTP)
		if !ok || len(u.ProtectionProfiles) != 1 || len(u.MasterKeyIdentifier) != 0 {
			continue
		}
		k.profile, k.profileOK = srtpProfile(u.ProtectionProfiles[0])
	}
	return &m
}

// Write is the SettingEngine's DTLS key log writer: one line
// "CLIENT_RANDOM <client random> <master secret>" (hex) per handshake.
// It never fails (an error would only be logged by dtls at debug level),
// and it never echoes what it was given.
func (k *keyCatcher) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	f := bytes.Fields(line)
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(f) != 3 || string(f[0]) != "CLIENT_RANDOM" || hex.DecodedLen(len(f[1])) != handshake.RandomLength {
		k.logged = false
		return len(p), nil
	}
	master := make([]byte, hex.DecodedLen(len(f[2])))
	if _, err := hex.Decode(k.clientRandom[:], f[1]); err != nil {
		k.logged = false
		return len(p), nil
	}
	if _, err := hex.Decode(master, f[2]); err != nil || len(master) == 0 {
		k.logged = false
		return len(p), nil
	}
	clear(k.master)
	k.master, k.logged, k.keys = master, true, nil
	return len(p), nil
}

// srtpKeys derives the connection's SRTP keys and salts once both halves
// are known; errKeysIncomplete until then, or for good on a connection
// where this server is the DTLS client.
func (k *keyCatcher) srtpKeys() (*srtpKeys, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys != nil {
		return k.keys, nil
	}
	if !k.server || !k.logged || !k.profileOK {
		return nil, errKeysIncomplete
	}
	h := prfHash(k.suite)
	if h == nil {
		return nil, errKeysIncomplete
	}
	x := &exporter{master: k.master, hash: h}
	x.seed = append(append([]byte(dtlsSRTPLabel), k.clientRandom[:]...), k.serverRandom[:]...)
	cfg := srtp.Config{Profile: k.profile}
	if err := cfg.ExtractSessionKeysFromDTLS(x, false); err != nil {
		return nil, errors.Join(errKeysIncomplete, err)
	}
	clear(k.master)
	k.master = nil
	k.keys = &srtpKeys{profile: k.profile, key: cfg.Keys.LocalMasterKey, salt: cfg.Keys.LocalMasterSalt,
		remoteKey: cfg.Keys.RemoteMasterKey, remoteSalt: cfg.Keys.RemoteMasterSalt}
	return k.keys, nil
}

// exporter is RFC 5705's keying material exporter over a known master
// secret (TLS 1.2's PRF is P_hash over label || seed).
type exporter struct {
	master, seed []byte
	hash         prf.HashFunc
}

func (x *exporter) ExportKeyingMaterial(label string, ctx []byte, n int) ([]byte, error) {
	if label != dtlsSRTPLabel || len(ctx) != 0 {
		return nil, errKeysIncomplete
	}
	return prf.PHash(x.master, x.seed, n, x.hash)
}

// prfHash is the PRF hash of a DTLS 1.2 cipher suite pion offers: SHA-384
// for the *_SHA384 suites, SHA-256 for the others (TLS 1.2's default, which
// pion's CBC and CCM suites use too). nil for a suite not known here.
func prfHash(id uint16) prf.HashFunc {
	switch dtls.CipherSuiteID(id) {
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return sha512.New384
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, dtls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
		dtls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, dtls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		return sha256.New
	}
	return nil
}

// srtpProfile maps the use_srtp profile to pion/srtp's, as pion's own
// DTLSTransport does (the profiles it can negotiate).
func srtpProfile(p extension.SRTPProtectionProfile) (srtp.ProtectionProfile, bool) {
	switch p {
	case extension.SRTP_AEAD_AES_128_GCM:
		return srtp.ProtectionProfileAeadAes128Gcm, true
	case extension.SRTP_AEAD_AES_256_GCM:
		return srtp.ProtectionProfileAeadAes256Gcm, true
	case extension.SRTP_AES128_CM_HMAC_SHA1_80:
		return srtp.ProtectionProfileAes128CmHmacSha1_80, true
	case extension.SRTP_NULL_HMAC_SHA1_80:
		return srtp.ProtectionProfileNullHmacSha1_80, true
	}
	return 0, false
}
