// Package pb holds Go definitions of OpenTera's protobuf messages (package
// opentera.protobuf of introlab/opentera_messages) and the small helpers
// needed to speak OpenTera's Redis protocol byte for byte: RPC calls and
// replies, and the TeraEvent / TeraModuleMessage envelopes with their
// google.protobuf.Any payloads.
//
// The *.pb.go files are generated from proto/*.proto by gen.sh and are
// committed; building this package never needs protoc. Field names and
// numbers in proto/ must match OpenTera's exactly: the tests pin the wire
// bytes of the messages we exchange.
package pb

//go:generate sh ./gen.sh
