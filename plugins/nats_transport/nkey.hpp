// NKey helper: cnats' natsOptions_SetNKeyFromSeed wants the user's public key next to the
// seed file, but users have only the seed ("SU…"); the public key is derived from it here
// (Ed25519 via OpenSSL, NATS' base32 + CRC-16 encoding).
#pragma once

#include <string>

namespace fraiseql_observer::nats_transport {

/// Reads the seed file (first line starting with "SU") and returns the user public key
/// ("U…"). Throws std::runtime_error with a message that never contains the seed.
std::string nkey_public_from_seed_file(const std::string &path);

} // namespace fraiseql_observer::nats_transport
