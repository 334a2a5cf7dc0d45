package main

import (
	"slices"
	"testing"
)

func TestParseBuilds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []build
		ok   bool
	}{
		{"", nil, true},
		{"/tmp/rehabrtc", []build{{"rehabrtc", "/tmp/rehabrtc"}}, true},
		{"before=/tmp/a,after=/tmp/b", []build{{"before", "/tmp/a"}, {"after", "/tmp/b"}}, true},
		{"before=/tmp/a,/tmp/b", nil, false},
		{"a=/x,a=/y", nil, false},
		{"coturn=/x", nil, false},
		{"=/x", nil, false},
		{"a=", nil, false},
	} {
		got, err := parseBuilds(tc.in)
		if (err == nil) != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("parseBuilds(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestSchedule(t *testing.T) {
	o := options{rates: []int{100, 1000}, maxRate: 1500, rateStep: 200}
	if got, want := schedule(o), []int{100, 1000, 1200, 1400}; !slices.Equal(got, want) {
		t.Errorf("schedule = %v, want %v", got, want)
	}
	o.maxRate = 0
	if got := schedule(o); !slices.Equal(got, o.rates) {
		t.Errorf("schedule without max-rate = %v", got)
	}
}

func TestSaturation(t *testing.T) {
	run := func(losses ...float64) []result {
		var rs []result
		for i, l := range losses {
			rs = append(rs, result{offered: 100 * (i + 1), sent: float64(100 * (i + 1)), loss: l})
		}
		return rs
	}
	for _, tc := range []struct {
		rs   []result
		want int
	}{
		{run(0, 0, 0), 0},
		{run(0, 0.02, 0, 0.03, 0.3), 400}, // a spike at 200 that did not last
		{run(0, 0.011, 0.05), 200},
		{run(0, 0.01), 0}, // 1 % is not past 1 %
		{nil, 0},
		{func() []result { rs := run(0, 0, 0.5); rs[2].sent = 10; return rs }(), 0}, // the generator's limit, not the server's
		{func() []result { rs := run(0, 0.5, 0.5); rs[2].sent = 10; return rs }(), 200},
	} {
		if got := saturation(tc.rs); got != tc.want {
			t.Errorf("saturation(%v) = %d, want %d", tc.rs, got, tc.want)
		}
	}
}
