#include <variant>

#include "chat/auth_token.h"
#include "chat/parleyd/operations.h"
#include "chat/parley_impl.h"
#include "chat/parleyd_options.h"

// parley::Config: its checks (through parleyd's own option table) and its translation into the
// WebSocket server's and the chat application's settings, as parleyd_worker.cpp does for
// ParleydOptions.

namespace parley {

chat::ParleydOptions parleyd_view(const Config& c) {
  chat::ParleydOptions o;
  o.listen = c.listen;
  o.reuse_port = c.reuse_port;
  o.max_message_size = c.max_message_size;
  o.handshake_timeout_ms = c.handshake_timeout_ms;
  o.close_timeout_ms = c.close_timeout_ms;
  o.ping_interval_ms = c.ping_interval_ms;
  o.pong_timeout_ms = c.pong_timeout_ms;
  o.idle_timeout_ms = c.idle_timeout_ms;
  o.max_pings_per_second = c.max_pings_per_second;
  o.drain_timeout_ms = c.drain_timeout_ms;
  o.max_buffered = c.max_buffered;
  o.max_memory = c.max_memory;
  o.slow_consumer_drop = c.slow_consumer_drop;
  o.deflate = c.deflate;
  o.deflate_threshold = c.deflate_threshold;
  o.max_connections = c.max_connections;
  o.max_connections_per_ip = c.max_connections_per_ip;
  o.max_handshakes_per_ip = c.max_handshakes_per_ip;
  o.max_handshakes = c.max_handshakes;
  o.history_size = c.history_size;
  o.max_text_bytes = c.max_text_bytes;
  o.max_rooms_per_connection = c.max_rooms_per_connection;
  o.auth_secret_file = c.token_secret_file;
  o.allow_origin = c.allow_origin;
  o.deny_missing_origin = c.deny_missing_origin;
  o.rate_limit = c.rate_limit;
  o.rate_burst = c.rate_burst;
  o.handshake_rate = c.handshake_rate;
  o.max_room_members = c.max_room_members;
  o.history_memory = c.history_memory;
  o.max_rooms = c.max_rooms;
  o.max_rooms_per_ip = c.max_rooms_per_ip;
  o.store = c.store;
  o.sync_full = c.sync_full;
  o.history_keep = c.history_keep;
  o.recovery_limit = c.recovery_limit;
  o.dedup_window_minutes = c.dedup_window_minutes;
  o.history_max_age_seconds = c.history_max_age_seconds;
  o.resume_window_seconds = c.resume_window_seconds;
  o.tls_cert_file = c.tls_cert_file;
  o.tls_key_file = c.tls_key_file;
  return o;
}

bool validate_config(const Config& c, std::string& error) {
  // Every value goes through parleyd's own option table (parleyd_options.cpp): the same ranges,
  // choices and checks as a flag, a PARLEY_* variable or a config-file key, with no second copy.
  const chat::ParleydOptions view = parleyd_view(c);
  for (const chat::OptionSpec& spec : chat::parleyd_option_specs()) {
    // UINT64_MAX is "automatic", as parleyd without --max-memory.
    if (spec.name == "max-memory" && view.max_memory == chat::kAutoMemoryBudget) continue;
    const std::string text = chat::parleyd_option_text(spec, view);
    // Empty optional texts (no secret file, no Origin list, no TLS) are "not set".
    if (std::holds_alternative<std::string chat::ParleydOptions::*>(spec.field) && text.empty()) continue;
    chat::ParleydOptions scratch;
    std::string why;
    if (!chat::set_parleyd_option(spec, text, false, scratch, why)) {
      error = "invalid Config value for parleyd's --" + std::string(spec.name) + ": '" + text + "' (" + why + ")";
      return false;
    }
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
  return true;
}

protocol::WsServerConfig ws_server_config(const Config& c) {
  // parleyd's own translation, as one worker (parleyd_view leaves workers at 1).
  return chat::ws_server_config_from_options(parleyd_view(c));
}

bool chat_config(const Config& c, chat::ChatConfig& out, std::string& error) {
  out.history_size = c.history_size;
  out.max_rooms_per_connection = c.max_rooms_per_connection;
  out.recovery_limit = c.recovery_limit;
  out.dedup_window_ms = uint64_t{c.dedup_window_minutes} * 60 * 1000;
  out.resume_window_ms = uint64_t{c.resume_window_seconds} * 1000;
  out.history_memory = c.history_memory;
  out.max_rooms = c.max_rooms;
  out.max_rooms_per_ip = c.max_rooms_per_ip;
  // Tokens, Origins, rates and room size: parleyd's own translation (chat/parleyd/operations.h).
  if (!chat::chat_access_from_options(parleyd_view(c), out, error)) {
    error = "Config: " + error;
    return false;
  }
  if (!c.token_secret.empty()) out.token_secret = c.token_secret;
  return true;
}

}  // namespace parley
