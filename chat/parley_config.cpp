#include <unistd.h>

#include "chat/auth_token.h"
#include "chat/option_limits.h"
#include "chat/origin_policy.h"
#include "chat/parley_impl.h"
#include "chat/parleyd_options.h"
#include "reactor/memory_budget.h"

// parley::Config: its checks (parleyd's ranges, shared through chat/option_limits.h) and its
// translation into the WebSocket server's and the chat application's settings, as
// parleyd_worker.cpp does for ParleydOptions.

namespace parley {

bool validate_config(const Config& c, std::string& error) {
  namespace limits = chat::option_limits;
  struct Field {
    const char* name;
    uint64_t value;
    const limits::Range& range;
  };
  const Field fields[] = {
      {"Config::max_message_size", c.max_message_size, limits::kMaxMessageSize},
      {"Config::handshake_timeout_ms", c.handshake_timeout_ms, limits::kHandshakeTimeout},
      {"Config::close_timeout_ms", c.close_timeout_ms, limits::kCloseTimeout},
      {"Config::drain_timeout_ms", c.drain_timeout_ms, limits::kDrainTimeout},
      {"Config::ping_interval_ms", c.ping_interval_ms, limits::kPingInterval},
      {"Config::pong_timeout_ms", c.pong_timeout_ms, limits::kPongTimeout},
      {"Config::idle_timeout_ms", c.idle_timeout_ms, limits::kIdleTimeout},
      {"Config::max_pings_per_second", c.max_pings_per_second, limits::kMaxPingsPerSecond},
      {"Config::max_buffered", c.max_buffered, limits::kMaxBuffered},
      {"Config::deflate_threshold", c.deflate_threshold, limits::kDeflateThreshold},
      {"Config::max_connections", c.max_connections, limits::kMaxConnections},
      {"Config::max_connections_per_ip", c.max_connections_per_ip, limits::kMaxConnectionsPerIp},
      {"Config::max_handshakes_per_ip", c.max_handshakes_per_ip, limits::kMaxHandshakesPerIp},
      {"Config::max_handshakes", c.max_handshakes, limits::kMaxHandshakes},
      {"Config::history_size", c.history_size, limits::kHistory},
      {"Config::max_text_bytes", c.max_text_bytes, limits::kMaxText},
      {"Config::max_rooms_per_connection", c.max_rooms_per_connection, limits::kMaxRoomsPerConnection},
      {"Config::rate_limit", c.rate_limit, limits::kRateLimit},
      {"Config::rate_burst", c.rate_burst, limits::kRateBurst},
      {"Config::handshake_rate", c.handshake_rate, limits::kHandshakeRate},
      {"Config::max_room_members", c.max_room_members, limits::kMaxRoomMembers},
      {"Config::history_memory", c.history_memory, limits::kHistoryMemory},
      {"Config::max_rooms", c.max_rooms, limits::kMaxRooms},
      {"Config::max_rooms_per_ip", c.max_rooms_per_ip, limits::kMaxRoomsPerIp},
      {"Config::history_keep", c.history_keep, limits::kHistoryKeep},
      {"Config::recovery_limit", c.recovery_limit, limits::kRecoveryLimit},
      {"Config::dedup_window_minutes", c.dedup_window_minutes, limits::kDedupWindow},
  };
  for (const Field& field : fields) {
    if (!limits::check(field.name, field.value, field.range, error)) return false;
  }
  // UINT64_MAX is "automatic" (chat::kAutoMemoryBudget), as parleyd without --max-memory.
  if (c.max_memory != chat::kAutoMemoryBudget &&
      !limits::check("Config::max_memory", c.max_memory, limits::kMaxMemory, error)) {
    return false;
  }
  if (c.path.empty() || c.path.front() != '/') {
    error = "invalid Config::path '" + c.path + "' (an absolute path such as /chat)";
    return false;
  }
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    error = "Config::tls_cert_file and Config::tls_key_file must be given together";
    return false;
  }
  if (!c.token_secret.empty() && !c.token_secret_file.empty()) {
    error = "Config::token_secret and Config::token_secret_file are exclusive";
    return false;
  }
  if (!c.token_secret.empty() && c.token_secret.size() < chat::kMinSecretBytes) {
    error = "Config::token_secret is " + std::to_string(c.token_secret.size()) + " bytes; HS256 needs at least " +
            std::to_string(chat::kMinSecretBytes);
    return false;
  }
  if (c.store.empty()) {
    error = "Config::store needs a file name or none";
    return false;
  }
  return true;
}

protocol::WsServerConfig ws_server_config(const Config& c) {
  protocol::WsServerConfig out;
  out.max_message_size = c.max_message_size;
  out.handshake_timeout_ms = c.handshake_timeout_ms;
  out.close_timeout_ms = c.close_timeout_ms;
  out.ping_interval_ms = c.ping_interval_ms;
  out.pong_timeout_ms = c.pong_timeout_ms;
  out.idle_timeout_ms = c.idle_timeout_ms;
  // The same budget rule as parleyd with one worker (worker_ping_budget).
  chat::ParleydOptions budget;
  budget.max_pings_per_second = c.max_pings_per_second;
  budget.workers = 1;
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  out.max_pings_per_second = chat::worker_ping_budget(budget, cpus > 0 ? static_cast<uint32_t>(cpus) : 1);
  out.max_buffered = c.max_buffered;
  out.max_memory = c.max_memory == chat::kAutoMemoryBudget ? reactor::default_memory_budget(1) : c.max_memory;
  out.slow_consumer = c.slow_consumer_drop ? protocol::SlowConsumerPolicy::kDrop : protocol::SlowConsumerPolicy::kClose;
  out.deflate = c.deflate;
  out.deflate_threshold = static_cast<size_t>(c.deflate_threshold);
  out.max_connections = c.max_connections;
  out.max_connections_per_ip = c.max_connections_per_ip;
  out.max_handshakes_per_ip = c.max_handshakes_per_ip;
  out.max_handshakes = c.max_handshakes;
  return out;
}

bool chat_config(const Config& c, chat::ChatConfig& out, std::string& error) {
  out.history_size = c.history_size;
  out.max_text_bytes = c.max_text_bytes;
  out.max_rooms_per_connection = c.max_rooms_per_connection;
  out.recovery_limit = c.recovery_limit;
  out.dedup_window_ms = uint64_t{c.dedup_window_minutes} * 60 * 1000;
  out.message_rate = c.rate_limit;
  out.message_burst = c.rate_burst;
  out.handshake_rate = c.handshake_rate;
  out.handshake_burst = c.handshake_rate == 0 ? 1 : c.handshake_rate;
  out.max_room_members = c.max_room_members;
  out.history_memory = c.history_memory;
  out.max_rooms = c.max_rooms;
  out.max_rooms_per_ip = c.max_rooms_per_ip;
  out.token_secret = c.token_secret;
  if (!c.token_secret_file.empty()) {
    std::string why;
    if (!chat::read_token_secret(c.token_secret_file.c_str(), out.token_secret, why)) {
      error = "Config::token_secret_file: " + why;
      return false;
    }
  }
  if (!c.allow_origin.empty() || c.deny_missing_origin) {
    chat::OriginPolicy policy;
    std::string why;
    if (!policy.parse(c.allow_origin.empty() ? std::string_view("*") : std::string_view(c.allow_origin), why)) {
      error = "invalid Config::allow_origin: " + why;
      return false;
    }
    policy.set_missing_origin(c.deny_missing_origin ? chat::OriginPolicy::MissingOrigin::kDeny
                                                    : chat::OriginPolicy::MissingOrigin::kAllow);
    out.origins = std::move(policy);
  }
  return true;
}

}  // namespace parley
