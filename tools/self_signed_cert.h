#pragma once
// A throwaway self-signed certificate for local TLS (tests, benchmarks): ECDSA P-256, subject
// CN=localhost with subjectAltName localhost and 127.0.0.1. Never for production use.
#include <string>

namespace tools {

// Writes a fresh key (PEM, unencrypted, mode 0600) to `key_path` and its self-signed
// certificate (PEM, valid for `days` days from an hour ago) to `cert_path`. False with `error`.
bool write_self_signed_cert(const std::string& cert_path, const std::string& key_path, std::string& error,
                            int days = 30);

}  // namespace tools
