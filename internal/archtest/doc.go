// Package archtest holds no code: its test asserts the dependency
// direction of rehabrtc's packages (docs/architecture.md, "Packages"), so
// that it stays true as packages are added.
package archtest
