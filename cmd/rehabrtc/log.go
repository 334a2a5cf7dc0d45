package main

// Log attribute keys of the composition root, one spelling so that log
// queries stay stable.
const (
	logKeyComponent = "component"
	logKeyErr       = "err"
)
