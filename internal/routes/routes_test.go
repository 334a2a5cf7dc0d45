package routes

import (
	"net/http"
	"sync"
	"testing"
)

func TestTable(t *testing.T) {
	var tb Table
	if _, ok := tb.Handler(8080); ok {
		t.Fatal("empty table routes 8080")
	}
	h := http.NotFoundHandler()
	rmA := tb.Add(8080, h)
	rmProxy := tb.Add(8081, nil)
	for _, c := range []struct {
		port    int
		ok, nil bool
	}{
		{8080, true, false},
		{8081, true, true},
		{8082, false, true},
	} {
		got, ok := tb.Handler(c.port)
		if ok != c.ok || (got == nil) != c.nil {
			t.Errorf("port %d: handler %v ok %v, want ok %v nil %v", c.port, got, ok, c.ok, c.nil)
		}
	}
	rmA()
	rmB := tb.Add(8080, h) // the next session on the same port
	rmA()                  // a late second removal of the first one
	if _, ok := tb.Handler(8080); !ok {
		t.Fatal("a stale removal dropped the next session's route")
	}
	rmB()
	rmProxy()
	if tb.Len() != 0 {
		t.Fatalf("len %d after every removal", tb.Len())
	}
}

// TestTableConcurrent: readers and writers at once, for -race.
func TestTableConcurrent(t *testing.T) {
	var tb Table
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				tb.Add(w*1000+i, http.NotFoundHandler())()
			}
		})
		wg.Go(func() {
			for i := range 200 {
				tb.Handler(w*1000 + i)
			}
		})
	}
	wg.Wait()
	if tb.Len() != 0 {
		t.Fatalf("len %d", tb.Len())
	}
}
