#pragma once
// The ranges of parleyd's numeric options, shared by the embedding API's validation
// (parley::Config, chat/parley_config.cpp) so both accept the same values. parleyd's own table
// (parleyd_options.cpp value_options) states the same bounds; tests/embed_config_test.cpp checks
// that parse_parleyd_options accepts each range's ends and refuses one past them, so a change on
// either side fails a test until the other follows.
#include <cstdint>
#include <string>
#include <string_view>

namespace chat::option_limits {

// An inclusive range and how to explain it ("(...)" in an error message).
struct Range {
  uint64_t min;
  uint64_t max;
  const char* expected;
};

inline constexpr uint64_t kDayMs = 86400000;

inline constexpr Range kMaxMessageSize{1, 1u << 30, "bytes, 1 to 1G"};
inline constexpr Range kHandshakeTimeout{1, kDayMs, "milliseconds, 1 to 86400000"};
inline constexpr Range kCloseTimeout{1, kDayMs, "milliseconds, 1 to 86400000"};
inline constexpr Range kPingInterval{0, kDayMs, "milliseconds, 0 (off) to 86400000"};
inline constexpr Range kPongTimeout{1, kDayMs, "milliseconds, 1 to 86400000"};
inline constexpr Range kIdleTimeout{0, kDayMs, "milliseconds, 0 (off) to 86400000"};
inline constexpr Range kMaxPingsPerSecond{0, 100000000, "pings per second, 0 (auto) to 100000000"};
inline constexpr Range kDrainTimeout{0, kDayMs, "milliseconds, 0 to 86400000"};
inline constexpr Range kMaxBuffered{1024, 1u << 30, "bytes, 1K to 1G"};
inline constexpr Range kMaxMemory{0, uint64_t{1} << 50, "bytes, 0 (off) to 1P"};
inline constexpr Range kDeflateThreshold{0, 1u << 30, "bytes, 0 to 1G"};
inline constexpr Range kMaxConnections{0, UINT32_MAX, "0 (the fd limit) or more"};
inline constexpr Range kMaxConnectionsPerIp{0, UINT32_MAX, "0 (unlimited) or more"};
inline constexpr Range kMaxHandshakesPerIp{0, UINT32_MAX, "0 (unlimited) or more"};
inline constexpr Range kMaxHandshakes{0, UINT32_MAX, "0 (a quarter of the fd limit) or more"};
inline constexpr Range kHistory{0, 100000, "messages per room, 0 to 100000"};
inline constexpr Range kMaxText{1, 64u << 20, "bytes, 1 to 64M"};
inline constexpr Range kMaxRoomsPerConnection{1, 65536, "1 to 65536"};
inline constexpr Range kRateLimit{0, 1000000, "messages per second, 0 (off) to 1000000"};
inline constexpr Range kRateBurst{1, 4294, "messages, 1 to 4294"};
inline constexpr Range kHandshakeRate{0, 4294, "handshakes per second, 0 (off) to 4294"};
inline constexpr Range kMaxRoomMembers{0, UINT32_MAX, "0 (unlimited) or more"};
inline constexpr Range kHistoryMemory{0, uint64_t{1} << 40, "bytes, 0 (no cap) to 1T"};
inline constexpr Range kMaxRooms{0, UINT32_MAX, "0 (unlimited) or more"};
inline constexpr Range kMaxRoomsPerIp{0, UINT32_MAX, "0 (unlimited) or more"};
inline constexpr Range kHistoryKeep{0, UINT32_MAX, "messages per room, 0 (no limit) or more"};
inline constexpr Range kRecoveryLimit{1, 1000000, "messages, 1 to 1000000"};
inline constexpr Range kDedupWindow{1, 10080, "minutes, 1 to 10080 (a week)"};

// True when `value` is within `range`; else false with `error` = "invalid NAME VALUE (EXPECTED)".
inline bool check(std::string_view name, uint64_t value, const Range& range, std::string& error) {
  if (value >= range.min && value <= range.max) return true;
  error = "invalid " + std::string(name) + " " + std::to_string(value) + " (" + range.expected + ")";
  return false;
}

}  // namespace chat::option_limits
