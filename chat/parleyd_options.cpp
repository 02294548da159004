#include "chat/parleyd_options.h"

#include <algorithm>
#include <charconv>
#include <cstddef>

#include "chat/cluster/redis_link.h"
#include "chat/origin_policy.h"
#include "reactor/socket_ops.h"

namespace chat {

namespace {

using O = ParleydOptions;
constexpr uint64_t kDay = 86400000;

bool check_address(std::string_view value, std::string& why) {
  reactor::SocketAddress address;
  if (reactor::parse_address(std::string(value), address) == 0) return true;
  why = "expected HOST:PORT, e.g. 127.0.0.1:8080";
  return false;
}

bool check_origins(std::string_view value, std::string& why) {
  OriginPolicy policy;
  if (!policy.parse(value, why)) return false;
  if (policy.empty()) {
    why = "no origin listed";
    return false;
  }
  return true;
}

bool check_redis_url(std::string_view value, std::string& why) {
  if (value.empty()) return true;  // no Redis
  RedisEndpoint endpoint;
  return parse_redis_url(value, endpoint, why);
}

// THE option table. One entry per option; keep entries self-contained so that options added on
// other branches merge as one hunk each. Order = --help order.
const OptionSpec kOptions[] = {
    {.name = "config", .value = "FILE", .field = &O::config_file, .min = 1, .flags = kOptionNoFile,
     .help = "read options from this TOML file (keys: the option names, e.g.\n"
             "rate-limit = 10); flags beat PARLEY_* variables, which beat the file"},
    {.name = "check-config", .field = &O::check_config, .flags = kOptionNoFile | kOptionNoEnv,
     .help = "validate the configuration (options, secret and TLS files), print every\n"
             "option with its value and source, and exit (0 valid, 1 invalid)"},
    {.name = "listen", .value = "HOST:PORT", .field = &O::listen, .min = 1, .check = check_address,
     .help = "address to serve (default 127.0.0.1:8080; port 0 picks a free one)"},
    {.name = "reuseport", .field = &O::reuse_port,
     .help = "set SO_REUSEPORT so several parleyd processes share the port"},
    {.name = "workers", .value = "N", .field = &O::workers, .min = 1, .max = 256, .expected = "processes, 1 to 256",
     .help = "run N worker processes on the port (SO_REUSEPORT), each its own\n"
             "reactor; rooms are per worker unless --redis (default 1)"},
    {.name = "max-message-size", .value = "BYTES", .field = &O::max_message_size, .min = 1, .max = 1u << 30,
     .sizes = true, .expected = "bytes, 1 to 1G, e.g. 65536, 64K or 16M",
     .help = "largest /echo message, K/M/G suffixes (default 16M); larger -> close 1009"},
    {.name = "handshake-timeout", .value = "MS", .field = &O::handshake_timeout_ms, .min = 1, .max = kDay,
     .expected = "milliseconds, 1 to 86400000", .help = "time allowed for the HTTP upgrade request (default 10000)"},
    {.name = "close-timeout", .value = "MS", .field = &O::close_timeout_ms, .min = 1, .max = kDay,
     .expected = "milliseconds, 1 to 86400000", .help = "time allowed for the close handshake (default 5000)"},
    {.name = "ping-interval", .value = "MS", .field = &O::ping_interval_ms, .min = 0, .max = kDay,
     .expected = "milliseconds, 0 (off) to 86400000",
     .help = "heartbeat ping period, 0 disables (default 30000); at least\n"
             "--pong-timeout, since the next ping follows the deadline"},
    {.name = "pong-timeout", .value = "MS", .field = &O::pong_timeout_ms, .min = 1, .max = kDay,
     .expected = "milliseconds, 1 to 86400000",
     .help = "close a connection silent this long after a ping (default 10000)"},
    {.name = "max-pings-per-second", .value = "N", .field = &O::max_pings_per_second, .min = 0, .max = 100000000,
     .expected = "pings per second, 0 (auto) to 100000000",
     .help = "heartbeat budget of the server (shared by the workers); past it\n"
             "the ping period stretches to connections / N seconds, and\n"
             "/metrics and stderr say so; 0 = auto, 10000 per CPU (default 0)"},
    {.name = "idle-timeout", .value = "MS", .field = &O::idle_timeout_ms, .min = 0, .max = kDay,
     .expected = "milliseconds, 0 (off) to 86400000",
     .help = "close (1000) connections with no message this long, 0 = never (default 0)"},
    {.name = "max-buffered", .value = "BYTES", .field = &O::max_buffered, .min = 1024, .max = 1u << 30, .sizes = true,
     .expected = "bytes, 1K to 1G", .help = "write-queue cap per connection (default 1M)"},
    {.name = "slow-consumer", .value = "POLICY", .field = &O::slow_consumer_drop, .choices = "close|drop",
     .help = "past the cap: close (1008, default) or drop (drop messages)"},
    {.name = "max-memory", .value = "BYTES", .field = &O::max_memory, .min = 0, .max = uint64_t{1} << 50,
     .sizes = true, .expected = "bytes, 0 (off) or more, e.g. 512M or 4G",
     .help = "budget for all write queues of a worker, K/M/G suffixes, 0 = off\n"
             "(default: a quarter of RAM or the cgroup limit, / --workers); near\n"
             "it new connections get 503, at it the largest queues are closed (1008)"},
    {.name = "deflate", .value = "on|off", .field = &O::deflate, .choices = "off|on",
     .help = "accept permessage-deflate (RFC 7692) offers (default on)"},
    {.name = "deflate-threshold", .value = "BYTES", .field = &O::deflate_threshold, .min = 0, .max = 1u << 30,
     .sizes = true, .expected = "bytes, 0 to 1G, e.g. 64 or 1K",
     .help = "send smaller messages uncompressed, K/M suffixes (default 64)"},
    {.name = "io-uring", .value = "on|off", .field = &O::io_uring, .choices = "off|on",
     .help = "send each loop iteration's plain (non-TLS) output in one io_uring\n"
             "submission instead of one sendmsg per connection (default off;\n"
             "falls back to sendmsg, with a warning, where io_uring is unavailable)"},
    {.name = "max-connections", .value = "N", .field = &O::max_connections, .reload = Reload::kLive, .min = 0,
     .max = UINT32_MAX, .expected = "0 (the fd limit) or more",
     .help = "beyond: the oldest incomplete handshake is closed to make room,\n"
             "else HTTP 503 before the upgrade; 0 = fd limit (default 0)"},
    {.name = "max-connections-per-ip", .value = "N", .field = &O::max_connections_per_ip, .reload = Reload::kLive,
     .min = 0, .max = UINT32_MAX, .expected = "0 (unlimited) or more",
     .help = "per source address (IPv6: per /64) and worker; beyond: HTTP 503,\n"
             "0 = unlimited (default 1000)"},
    {.name = "max-handshakes-per-ip", .value = "N", .field = &O::max_handshakes_per_ip, .reload = Reload::kLive,
     .min = 0, .max = UINT32_MAX, .expected = "0 (unlimited) or more",
     .help = "incomplete handshakes (request head not yet complete) per source\n"
             "address; beyond, that address's oldest is closed (503), 0 =\n"
             "unlimited (default 32)"},
    {.name = "max-handshakes", .value = "N", .field = &O::max_handshakes, .reload = Reload::kLive, .min = 0,
     .max = UINT32_MAX, .expected = "0 (a quarter of the fd limit) or more",
     .help = "incomplete handshakes in all; beyond, and whenever fds run out,\n"
             "the oldest is closed; 0 = a quarter of the fd limit (default 0)"},
    {.name = "drain-timeout", .value = "MS", .field = &O::drain_timeout_ms, .min = 0, .max = kDay,
     .expected = "milliseconds, 0 to 86400000",
     .help = "on SIGTERM/SIGINT: close 1001 and wait this long (default 5000)"},
    {.name = "history", .value = "N", .field = &O::history_size, .min = 0, .max = 100000,
     .expected = "messages per room, 0 to 100000",
     .help = "chat messages kept per room and sent on join, 0 to 100000 (default 50)"},
    {.name = "max-text", .value = "BYTES", .field = &O::max_text_bytes, .reload = Reload::kLive, .min = 1,
     .max = 64u << 20, .sizes = true, .expected = "bytes, 1 to 64M, e.g. 4096 or 16K",
     .help = "longest chat message text, K/M suffixes (default 4096)"},
    {.name = "max-rooms-per-connection", .value = "N", .field = &O::max_rooms_per_connection, .min = 1, .max = 65536,
     .expected = "1 to 65536", .help = "rooms one connection may join, 1 to 65536 (default 32)"},
    {.name = "history-memory", .value = "BYTES", .field = &O::history_memory, .min = 0, .max = uint64_t{1} << 40,
     .sizes = true, .expected = "bytes, 0 (no cap) to 1T, e.g. 64M",
     .help = "history all rooms together may hold, K/M/G (default 64M, 0 = no\n"
             "cap); past it the oldest messages of the rooms holding the most go"},
    {.name = "max-rooms", .value = "N", .field = &O::max_rooms, .min = 0, .max = UINT32_MAX,
     .expected = "0 (unlimited) or more",
     .help = "live rooms in total, 0 = unlimited (default 100000); a join that\n"
             "would create one more gets error room_limit"},
    {.name = "max-rooms-per-ip", .value = "N", .field = &O::max_rooms_per_ip, .min = 0, .max = UINT32_MAX,
     .expected = "0 (unlimited) or more",
     .help = "live rooms created from one address (IPv6: per /64), 0 = unlimited\n"
             "(default 1000); beyond: error room_limit"},
    {.name = "echo", .value = "on|off", .field = &O::echo, .choices = "off|on",
     .help = "serve /echo, the conformance and benchmark endpoint (default on)"},

    {.name = "store", .value = "FILE|none", .field = &O::store, .min = 1,
     .help = "SQLite store (default parley.db in the working directory, so\n"
             "history survives restarts); none = memory only (the default\n"
             "with --workers > 1: rooms are per worker)",
     .heading = "Durable history (room messages and DMs are stored before they are acked and delivered):"},
    {.name = "redis", .value = "URL", .field = &O::redis, .check = check_redis_url,
     .help = "redis://HOST:PORT[/DB]: one chat across every parleyd on this Redis\n"
             "(workers, machines); its streams are the history (--store is\n"
             "refused), password from $PARLEY_REDIS_PASSWORD; unreachable at\n"
             "start -> exit 1; away later -> msg/dm get error unavailable until\n"
             "it is back (docs/redis.md)"},
    {.name = "sync", .value = "normal|full", .field = &O::sync_full, .choices = "normal|full",
     .help = "normal (default): an ack means committed to the OS; survives\n"
             "kill -9, the last commits may be lost on power loss. full: each\n"
             "commit is fsynced first; survives power loss too"},
    {.name = "history-keep", .value = "N", .field = &O::history_keep, .min = 0, .max = UINT32_MAX,
     .expected = "messages per room, 0 (no limit) or more",
     .help = "messages kept per room and DM conversation in the store, 0 = all\n"
             "(default 10000)"},
    {.name = "history-max-age", .value = "AGE", .field = &O::history_max_age_seconds, .min = 0,
     .max = uint64_t{100} * 366 * 86400, .durations = true,
     .expected = "e.g. 30d, 12h, 90m, 3600 (seconds), or 0 for off",
     .help = "also delete stored messages older than AGE (e.g. 30d, 12h, 90m;\n"
             "seconds without a suffix), 0 = keep by count only (default 0)"},
    {.name = "recovery-limit", .value = "N", .field = &O::recovery_limit, .min = 1, .max = 1000000,
     .expected = "messages, 1 to 1000000",
     .help = "most missed messages a join with since_seq gets (default 1000)"},
    {.name = "dedup-window", .value = "MINUTES", .field = &O::dedup_window_minutes, .min = 1, .max = 10080,
     .expected = "minutes, 1 to 10080 (a week)",
     .help = "a msg/dm id already stored for its sender within this window gets\n"
             "the original ack and is not delivered again (default 10)",
     .epilogue = "  A store that is newer, corrupt or unwritable stops parleyd at start (exit 1); a write error\n"
                 "  at run time answers the senders error unavailable and parleyd keeps serving.\n"
                 "\n"
                 "A /chat message over --max-text gets error text_too_long and the connection stays open, up to\n"
                 "16 x --max-text (at least 64K) per message; a larger one closes the connection with 1009.\n"},

    {.name = "resume-window", .value = "SECONDS", .field = &O::resume_window_seconds, .min = 0, .max = 86400,
     .expected = "seconds, 0 (off) to 86400",
     .help = "a dropped session (name, rooms) is held this long for a hello with\n"
             "its resume token; others see it away; 0 = off (default 120)"},
    {.name = "auth-secret", .value = "FILE", .field = &O::auth_secret_file, .reload = Reload::kLive, .min = 1,
     .help = "require an HS256 token (see parley-token) signed with the secret in\n"
             "FILE (at least 32 bytes); sent as Authorization: Bearer, as\n"
             "Sec-WebSocket-Protocol parley.token.<token> (echoed in the 101), or\n"
             "as ?token=; missing/invalid/expired -> HTTP 401 (a client offering\n"
             "parley.chat, as the page does, gets 101 then close 4401). The user is the\n"
             "token's sub (welcome at open, no hello needed) and its rooms claim,\n"
             "if any, limits joins (error rejected, reason forbidden_room: ...)",
     .heading = "Access control and abuse limits (on /chat and the page's WebSocket; --auth-secret covers /echo\n"
                "too):"},
    {.name = "allow-origin", .value = "LIST", .field = &O::allow_origin, .reload = Reload::kLive, .min = 1,
     .check = check_origins, .flags = kOptionList,
     .help = "comma-separated browser origins allowed on /chat: exact\n"
             "(https://chat.example.com) or https://*.example.com; others -> 403.\n"
             "List the page's own origin too. Default: any Origin (warned at start)"},
    {.name = "deny-missing-origin", .field = &O::deny_missing_origin, .reload = Reload::kLive,
     .help = "refuse /chat upgrades with no Origin header (403)"},
    {.name = "rate-limit", .value = "N", .field = &O::rate_limit, .reload = Reload::kLive, .min = 0, .max = 1000000,
     .expected = "messages per second, 0 (off) to 1000000",
     .help = "chat messages per second per connection, 0 = off (default 20);\n"
             "over it: error rejected (reason rate_limited: ...), message dropped;\n"
             "20 in a row: close 1008"},
    {.name = "rate-burst", .value = "B", .field = &O::rate_burst, .reload = Reload::kLive, .min = 1, .max = 4294,
     .expected = "messages, 1 to 4294", .help = "messages a connection may send at once, 1 to 4294 (default 40)"},
    {.name = "handshake-rate", .value = "N", .field = &O::handshake_rate, .reload = Reload::kLive, .min = 0,
     .max = 4294, .expected = "handshakes per second, 0 (off) to 4294",
     .help = "/chat upgrades per second per source address (IPv6: per /64),\n"
             "burst N; over it -> HTTP 429, 0 = off (default 0)"},
    {.name = "max-room-members", .value = "N", .field = &O::max_room_members, .reload = Reload::kLive, .min = 0,
     .max = UINT32_MAX, .expected = "0 (unlimited) or more",
     .help = "members per room, 0 = unlimited (default 10000); more joins get\n"
             "error rejected (reason room_full: ...); with --redis the cap\n"
             "is on each node's own members"},

    {.name = "tls-cert", .value = "FILE", .field = &O::tls_cert_file, .min = 1,
     .help = "PEM certificate chain (with --tls-key); `make certs` makes a\n"
             "self-signed pair for local use in build/certs/",
     .heading = "TLS (wss:// and https on the same port; TLS 1.2 and 1.3, ALPN http/1.1, session tickets):"},
    {.name = "tls-key", .value = "FILE", .field = &O::tls_key_file, .min = 1,
     .help = "PEM private key for --tls-cert"},

    {.name = "log-level", .value = "LEVEL", .field = &O::log_level, .reload = Reload::kLive,
     .choices = "error|warn|info|debug",
     .help = "error, warn, info (default: start, listen, stop, reloads) or debug\n"
             "(each connection's open and close); to stderr, never blocking",
     .heading = "Operations (docs/operations.md):"},
    {.name = "log-format", .value = "FORMAT", .field = &O::log_format, .choices = "text|json",
     .help = "text (default) or json (one object per line)"},
    {.name = "metrics-listen", .value = "HOST:PORT", .field = &O::metrics_listen, .min = 1, .check = check_address,
     .help = "serve /metrics, /healthz and /readyz on this second address only\n"
             "(then the main port answers /metrics with 404); default: main port"},
};

bool parse_number(const OptionSpec& spec, std::string_view text, uint64_t& out) {
  uint64_t value = 0;
  if (spec.durations) {
    if (!parse_duration_seconds(std::string(text), value) || value < spec.min || value > spec.max) return false;
    out = value;
    return true;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return false;
  std::string_view suffix(end, text.data() + text.size() - end);
  int shift = 0;
  if (spec.sizes && (suffix == "K" || suffix == "k" || suffix == "KiB")) shift = 10;
  else if (spec.sizes && (suffix == "M" || suffix == "m" || suffix == "MiB")) shift = 20;
  else if (spec.sizes && (suffix == "G" || suffix == "g" || suffix == "GiB")) shift = 30;
  else if (!suffix.empty()) return false;
  if (value > (UINT64_MAX >> shift)) return false;
  value <<= shift;
  if (value < spec.min || value > spec.max) return false;
  out = value;
  return true;
}

// Index of `word` in "a|b|c", or -1.
int choice_index(std::string_view choices, std::string_view word) {
  int index = 0;
  while (true) {
    size_t bar = choices.find('|');
    if (choices.substr(0, bar) == word) return index;
    if (bar == std::string_view::npos) return -1;
    choices.remove_prefix(bar + 1);
    ++index;
  }
}

std::string_view choice_word(std::string_view choices, int index) {
  for (; index > 0; --index) choices.remove_prefix(choices.find('|') + 1);
  return choices.substr(0, choices.find('|'));
}

std::string expected_choices(std::string_view choices) {
  std::string out(choices);
  std::replace(out.begin(), out.end(), '|', ',');
  size_t last = out.rfind(',');
  if (last != std::string::npos) out.replace(last, 1, " or ");
  for (size_t at = 0; (at = out.find(',', at)) != std::string::npos; at += 2) out.replace(at, 1, ", ");
  return out;
}

}  // namespace

bool parse_duration_seconds(const std::string& text, uint64_t& seconds) {
  constexpr uint64_t kMaxSeconds = uint64_t{100} * 366 * 86400;
  if (text.empty()) return false;
  uint64_t unit = 1;
  std::string_view digits = text;
  switch (text.back()) {
    case 's': unit = 1; digits.remove_suffix(1); break;
    case 'm': unit = 60; digits.remove_suffix(1); break;
    case 'h': unit = 3600; digits.remove_suffix(1); break;
    case 'd': unit = 86400; digits.remove_suffix(1); break;
    default: break;
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || digits.empty() || end != digits.data() + digits.size()) return false;
  if (value > kMaxSeconds / unit) return false;
  seconds = value * unit;
  return true;
}

std::span<const OptionSpec> parleyd_option_specs() { return kOptions; }

const OptionSpec* find_parleyd_option(std::string_view name) {
  for (const OptionSpec& spec : kOptions) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

bool set_parleyd_option(const OptionSpec& spec, std::string_view text, bool append, ParleydOptions& out,
                        std::string& why) {
  if (auto* flag = std::get_if<bool O::*>(&spec.field)) {
    int index = choice_index(spec.choices.empty() ? "false|true" : spec.choices, text);
    if (spec.choices.empty() && index < 0) {
      index = text == "0" || text == "off" ? 0 : text == "1" || text == "on" ? 1 : -1;
    }
    if (index < 0 || index > 1) {
      why = spec.choices.empty() ? "true or false" : expected_choices(spec.choices);
      return false;
    }
    out.*(*flag) = index == 1;
    return true;
  }
  if (auto* text_field = std::get_if<std::string O::*>(&spec.field)) {
    if (!spec.choices.empty() && choice_index(spec.choices, text) < 0) {
      why = expected_choices(spec.choices);
      return false;
    }
    if (spec.min > 0 && text.empty()) {
      why = spec.value == "FILE" ? "a file name" : "a value";
      return false;
    }
    if (spec.check != nullptr && !spec.check(text, why)) return false;
    std::string& field = out.*(*text_field);
    field = append && !field.empty() ? field + "," + std::string(text) : std::string(text);
    return true;
  }
  uint64_t value = 0;
  if (!parse_number(spec, text, value)) {
    why = std::string(spec.expected);
    return false;
  }
  if (auto* u32 = std::get_if<uint32_t O::*>(&spec.field)) {
    out.*(*u32) = static_cast<uint32_t>(value);
  } else {
    out.*std::get<uint64_t O::*>(spec.field) = value;
  }
  return true;
}

std::string parleyd_option_text(const OptionSpec& spec, const ParleydOptions& options) {
  return std::visit(
      [&](auto field) -> std::string {
        const auto& value = options.*field;
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, bool>) {
          return std::string(choice_word(spec.choices.empty() ? "false|true" : spec.choices, value ? 1 : 0));
        } else if constexpr (std::is_same_v<T, std::string>) {
          return value;
        } else {
          return std::to_string(value);
        }
      },
      spec.field);
}

std::string parleyd_usage() {
  constexpr size_t kColumn = 29;
  std::string out = "usage: parleyd [options]\n\n";
  for (const OptionSpec& spec : kOptions) {
    if (spec.flags & kOptionEnvOnly) continue;  // documented in docs/operations.md, not a flag
    if (!spec.heading.empty()) {
      out += '\n';
      out += spec.heading;
      out += '\n';
    }
    std::string line = "  --" + std::string(spec.name);
    if (!spec.value.empty()) line += " " + std::string(spec.value);
    line += line.size() < kColumn ? std::string(kColumn - line.size(), ' ') : "  ";
    std::string_view help = spec.help;
    while (true) {
      size_t newline = help.find('\n');
      line += help.substr(0, newline);
      out += line;
      out += '\n';
      if (newline == std::string_view::npos) break;
      help.remove_prefix(newline + 1);
      line.assign(kColumn, ' ');
    }
    out += spec.epilogue;
  }
  out += "\n"
         "  --help                     print this help\n"
         "  --version                  print the version\n"
         "\n"
         "Every option can also be set in the --config file (key = option name) or as an environment\n"
         "variable PARLEY_<NAME> (upper case, '-' -> '_'); flag > environment > file > default.\n"
         "\n"
         "Endpoints: / (chat page), /chat (chat protocol), /echo (WebSocket echo), /healthz, /readyz,\n"
         "/metrics.\n";
  return out;
}

uint32_t worker_ping_budget(const ParleydOptions& options, uint32_t cpus) {
  const uint64_t total = options.max_pings_per_second != 0
                             ? options.max_pings_per_second
                             : uint64_t{kPingsPerCpuPerSecond} * std::max<uint32_t>(cpus, 1);
  return static_cast<uint32_t>(std::max<uint64_t>(total / std::max<uint32_t>(options.workers, 1), 1));
}

}  // namespace chat
