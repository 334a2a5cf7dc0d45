package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// TestClusterConsultations: two nodes and a real Redis. A namespace
// created through one node's gateway exists on both: check-availability,
// the doctor's and the patient's connections and create-room work through
// either gateway, and doctor and patient reach each other whichever
// gateway each came through (one node serves the consultations, the other
// proxies). A kill -9 of that node loses nothing: the other takes over
// from the records in Redis, the namespace and its doctor token still
// work.
func TestClusterConsultations(t *testing.T) {
	cs, _, nodes := clusterOf(t, 2, 2, 0)
	rdb := redis.NewClient(&redis.Options{Addr: cs.redis})
	defer rdb.Close()
	byID := map[string]*clusterNodeProc{nodes[0].id: nodes[0], nodes[1].id: nodes[1]}
	var holder, other *clusterNodeProc
	testutil.Eventually(t, 10*time.Second, func() error {
		v, err := rdb.Get(t.Context(), "{t}:lease:0").Result()
		if err != nil {
			return fmt.Errorf("consultation lease: %v", err)
		}
		holder = byID[strings.SplitN(v, "#", 2)[0]]
		return nil
	})
	for _, n := range nodes {
		if n != holder {
			other = n
		}
	}

	token := createNamespace(t, other.gateway, "dr-who") // proxied to the holder, stored in Redis
	if body := getBody(t, other.gateway+"/api/check-availability?namespaceId=dr-who", http.StatusOK); !strings.Contains(body, `"availability":false`) {
		t.Fatalf("availability before the doctor: %s", body)
	}
	doctor := dialConsult(t, other.gateway, "dr-who", token)
	doctor.send(t, "doctor-joined", nil)
	testutil.Eventually(t, 5*time.Second, func() error {
		b := getBody(t, holder.gateway+"/check-availability?namespaceId=dr-who", http.StatusOK)
		return testutil.Until(strings.Contains(b, `"availability":true`), "availability through the holder: %s", b)
	})
	var room struct {
		ID string `json:"room-id"`
	}
	_ = json.Unmarshal([]byte(getBody(t, other.gateway+"/api/create-room", http.StatusOK)), &room)
	patient := dialConsult(t, holder.gateway, "dr-who", room.ID)
	patient.send(t, "create", map[string]string{"room-id": room.ID})
	doctor.expect(t, "new-patient")
	doctor.send(t, "join", map[string]any{"room-id": room.ID, "init": false})
	patient.expect(t, "room-joined")

	// The holder dies: the other node takes the consultations over from
	// Redis; the namespace and the doctor's token still work.
	holder.kill()
	// Until the other node takes over, the routes say so (503, Retry-After),
	// never an error page or a hang.
	if resp, err := http.Get(other.gateway + "/check-availability?namespaceId=dr-who"); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable &&
			(resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(b), `"msg":"consultations are moving`)) {
			t.Fatalf("during the takeover: 503 %q, Retry-After %q", b, resp.Header.Get("Retry-After"))
		} else if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusOK {
			t.Fatalf("during the takeover: %d %s", resp.StatusCode, b)
		}
	}
	testutil.Eventually(t, 15*time.Second, func() error {
		code, err := httpGet(other.gateway + "/check-availability?namespaceId=dr-who")
		return testutil.Until(err == nil && code == http.StatusOK, "check-availability: %d %v", code, err)
	})
	if v, _ := rdb.Get(t.Context(), "{t}:lease:0").Result(); !strings.HasPrefix(v, other.id+"#") {
		t.Fatalf("consultation lease %q after the kill, want %s's", v, other.id)
	}
	req, _ := http.NewRequest("GET", other.gateway+"/api/create-namespace?namespaceId=dr-who", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	if body := doBody(t, req); !strings.Contains(body, "already exists") {
		t.Fatalf("the namespace was lost: create-namespace again answers %s", body)
	}
	doctor2 := dialConsult(t, other.gateway, "dr-who", token)
	doctor2.send(t, "doctor-joined", nil)
	testutil.Eventually(t, 5*time.Second, func() error {
		b := getBody(t, other.gateway+"/check-availability?namespaceId=dr-who", http.StatusOK)
		return testutil.Until(strings.Contains(b, `"availability":true`), "availability after the takeover: %s", b)
	})
}

// createNamespace creates namespace ns through base with the API key and
// returns its doctor token.
func createNamespace(t *testing.T, base, ns string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/create-namespace?namespaceId="+ns, nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	var created struct {
		Token string `json:"doctor-token"`
	}
	if err := json.Unmarshal([]byte(doBody(t, req)), &created); err != nil || created.Token == "" {
		t.Fatalf("create-namespace %s: no token (%v)", ns, err)
	}
	return created.Token
}

func doBody(t *testing.T, req *http.Request) string {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
