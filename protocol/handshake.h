#pragma once
// The WebSocket opening handshake, server side (RFC 6455 section 4.2), and the plain HTTP
// responses parley sends. Pure: builds bytes into caller buffers.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/http_request.h"

namespace protocol {

inline constexpr size_t kAcceptKeyLength = 28;  // base64 of a 20-byte SHA-1

struct UpgradeCheck {
  int status = 0;               // 101 when the request is a valid upgrade, else 400/405/426
  std::string_view reason;      // why not, for the error body
  std::string_view key;         // Sec-WebSocket-Key (valid when status == 101)
  std::string_view origin;      // Origin header, empty if absent
  std::string_view protocols;   // Sec-WebSocket-Protocol offer, empty if absent
  std::string_view extensions;  // Sec-WebSocket-Extensions offer, empty if absent
};

// True when the request asks for a WebSocket upgrade (an Upgrade header naming websocket).
bool is_upgrade_request(const HttpRequest& request);

// Validates an upgrade request (RFC 6455 4.2.1): GET (405), HTTP/1.1 (400), Host (400),
// Upgrade: websocket and Connection: Upgrade as token lists (400), Sec-WebSocket-Version 13 (426),
// Sec-WebSocket-Key that base64-decodes to 16 bytes (400), and no body: Transfer-Encoding or a
// Content-Length other than 0 (400).
UpgradeCheck check_upgrade_request(const HttpRequest& request);

// Sec-WebSocket-Accept for `key`: base64(SHA-1(key + GUID)), RFC 6455 4.2.2. Writes 28 chars.
void compute_accept_key(std::string_view key, char out[kAcceptKeyLength]);

// Writes the 101 Switching Protocols response; `subprotocol` and `extensions` are omitted when
// empty. Returns the length, or 0 if `cap` is too small.
size_t write_upgrade_response(char* out, size_t cap, std::string_view key,
                              std::string_view subprotocol = {}, std::string_view extensions = {});

// Writes a complete HTTP/1.1 response with Content-Length and "Connection: close".
// `extra_headers` is inserted verbatim (each line ending in \r\n). Returns the length, or 0 if
// `cap` is too small. A 426 carries "Sec-WebSocket-Version: 13" through extra_headers.
size_t write_http_response(char* out, size_t cap, int status, std::string_view content_type,
                           std::string_view body, std::string_view extra_headers = {});

// The reason phrase for a status code ("OK", "Not Found", ...); for a code RFC 9110 does not
// name, its class ("Client Error", "Server Error", ...).
std::string_view status_reason(int status);

}  // namespace protocol
