package opentera

// Salvage lets the external fuzz test predict what the service salvages
// from an envelope that does not decode (FuzzSalvage checks salvage itself).
var Salvage = salvage
