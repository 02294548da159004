#pragma once
// Helpers shared by the files that implement ChatApp (chat_app.cpp, chat_access.cpp); not part
// of the public interface.
#include <cstdint>
#include <string_view>

#include "protocol/ws_server.h"

namespace chat::detail {

// The fd part of a connection id (its low 32 bits, ws_server.h).
inline uint32_t fd_of(protocol::ConnectionId id) { return static_cast<uint32_t>(id); }

// `room` without its optional leading '#'.
inline std::string_view without_hash(std::string_view room) {
  return !room.empty() && room.front() == '#' ? room.substr(1) : room;
}

// The per-address key of the peer of `id` (IPv4 address with the top bit set, IPv6 /64);
// false when getpeername fails or the family is neither.
bool peer_key_from_socket(protocol::ConnectionId id, uint64_t& key);

}  // namespace chat::detail
