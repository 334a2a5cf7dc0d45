module github.com/rehabrtc/rehabrtc/bench

go 1.26.0
