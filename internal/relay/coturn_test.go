package relay

import (
	"strings"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// TestCoturnSharedSecret: credentials minted by NewRESTMinter are accepted
// by a real coturn configured with the same secret, which relays between
// two clients; a credential minted with another secret is refused.
func TestCoturnSharedSecret(t *testing.T) {
	secret := strings.Repeat("k", 16) + NewMinter(time.Minute).password("x")[:20]
	addr := testutil.Coturn(t, secret)
	m := NewRESTMinter(secret, 10*time.Minute)
	f := &fixture{mint: m}
	a, err := f.allocate(t, overUDP, addr, m.Mint(alice))
	if err != nil {
		t.Fatalf("coturn refused our credential: %v", err)
	}
	b, err := f.allocate(t, overTCP, addr, m.Mint(bob))
	if err != nil {
		t.Fatalf("coturn refused our credential over TCP: %v", err)
	}
	if err := exchange(t, a, b, "through coturn"); err != nil {
		t.Fatal(err)
	}
	wrong := NewRESTMinter(strings.Repeat("w", 40), 10*time.Minute)
	if _, err := f.allocate(t, overUDP, addr, wrong.Mint(alice)); err == nil {
		t.Fatal("coturn accepted a credential minted with another secret")
	}
	expired := m.Mint(alice)
	expired.Username = "1000000000:" + alice.userID()
	expired.Password = m.password(expired.Username)
	if _, err := f.allocate(t, overUDP, addr, expired); err == nil {
		t.Fatal("coturn accepted an expired credential")
	}
}
