#include "chat/parleyd_options.h"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <variant>

#include "chat/origin_policy.h"

namespace chat {

namespace {

// Parses a decimal with an optional K/M/G (binary) suffix.
bool parse_size(const std::string& text, uint64_t& out) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return false;
  std::string suffix(end, text.data() + text.size());
  int shift = 0;
  if (suffix == "K" || suffix == "k" || suffix == "KiB") shift = 10;
  else if (suffix == "M" || suffix == "m" || suffix == "MiB") shift = 20;
  else if (suffix == "G" || suffix == "g" || suffix == "GiB") shift = 30;
  else if (!suffix.empty()) return false;
  if (value > (UINT64_MAX >> shift)) return false;
  out = value << shift;
  return true;
}

// One command-line option with a value: where it goes, its range, and how to explain it.
struct ValueOption {
  const char* name;
  std::variant<uint64_t*, uint32_t*> target;
  uint64_t min;
  uint64_t max;
  bool size_suffixes;  // accepts K/M/G
  const char* expected;  // the "(...)" part of the error message
};

std::vector<ValueOption> value_options(ParleydOptions& o) {
  constexpr uint64_t kDay = 86400000;
  return {
      {"--max-message-size", &o.max_message_size, 1, 1u << 30, true, "bytes, 1 to 1G, e.g. 65536, 64K or 16M"},
      {"--handshake-timeout", &o.handshake_timeout_ms, 1, kDay, false, "milliseconds, 1 to 86400000"},
      {"--close-timeout", &o.close_timeout_ms, 1, kDay, false, "milliseconds, 1 to 86400000"},
      {"--ping-interval", &o.ping_interval_ms, 0, kDay, false, "milliseconds, 0 (off) to 86400000"},
      {"--pong-timeout", &o.pong_timeout_ms, 1, kDay, false, "milliseconds, 1 to 86400000"},
      {"--idle-timeout", &o.idle_timeout_ms, 0, kDay, false, "milliseconds, 0 (off) to 86400000"},
      {"--max-pings-per-second", &o.max_pings_per_second, 0, 100000000, false,
       "pings per second, 0 (auto) to 100000000"},
      {"--drain-timeout", &o.drain_timeout_ms, 0, kDay, false, "milliseconds, 0 to 86400000"},
      {"--max-buffered", &o.max_buffered, 1024, 1u << 30, true, "bytes, 1K to 1G"},
      {"--max-memory", &o.max_memory, 0, uint64_t{1} << 50, true, "bytes, 0 (off) or more, e.g. 512M or 4G"},
      {"--deflate-threshold", &o.deflate_threshold, 0, 1u << 30, true, "bytes, 0 to 1G, e.g. 64 or 1K"},
      {"--max-connections", &o.max_connections, 0, UINT32_MAX, false, "0 (the fd limit) or more"},
      {"--max-connections-per-ip", &o.max_connections_per_ip, 0, UINT32_MAX, false, "0 (unlimited) or more"},
      {"--max-handshakes-per-ip", &o.max_handshakes_per_ip, 0, UINT32_MAX, false, "0 (unlimited) or more"},
      {"--max-handshakes", &o.max_handshakes, 0, UINT32_MAX, false, "0 (a quarter of the fd limit) or more"},
      {"--workers", &o.workers, 1, 256, false, "processes, 1 to 256"},
      {"--history", &o.history_size, 0, 100000, false, "messages per room, 0 to 100000"},
      {"--max-text", &o.max_text_bytes, 1, 64u << 20, true, "bytes, 1 to 64M, e.g. 4096 or 16K"},
      {"--max-rooms-per-connection", &o.max_rooms_per_connection, 1, 65536, false, "1 to 65536"},
      {"--rate-limit", &o.rate_limit, 0, 1000000, false, "messages per second, 0 (off) to 1000000"},
      {"--rate-burst", &o.rate_burst, 1, 4294, false, "messages, 1 to 4294"},
      {"--handshake-rate", &o.handshake_rate, 0, 4294, false, "handshakes per second, 0 (off) to 4294"},
      {"--max-room-members", &o.max_room_members, 0, UINT32_MAX, false, "0 (unlimited) or more"},
      {"--history-memory", &o.history_memory, 0, uint64_t{1} << 40, true, "bytes, 0 (no cap) to 1T, e.g. 64M"},
      {"--max-rooms", &o.max_rooms, 0, UINT32_MAX, false, "0 (unlimited) or more"},
      {"--max-rooms-per-ip", &o.max_rooms_per_ip, 0, UINT32_MAX, false, "0 (unlimited) or more"},
      {"--history-keep", &o.history_keep, 0, UINT32_MAX, false, "messages per room, 0 (no limit) or more"},
      {"--recovery-limit", &o.recovery_limit, 1, 1000000, false, "messages, 1 to 1000000"},
      {"--dedup-window", &o.dedup_window_minutes, 1, 10080, false, "minutes, 1 to 10080 (a week)"},
      {"--resume-window", &o.resume_window_seconds, 0, 86400, false, "seconds, 0 (off) to 86400"},
  };
}

bool parse_value(const ValueOption& option, const std::string& text) {
  uint64_t value = 0;
  if (option.size_suffixes) {
    if (!parse_size(text, value)) return false;
  } else {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end == text.data() || end != text.data() + text.size()) return false;
  }
  if (value < option.min || value > option.max) return false;
  std::visit([value](auto* target) { *target = static_cast<std::remove_pointer_t<decltype(target)>>(value); },
             option.target);
  return true;
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

std::string parleyd_usage() {
  return "usage: parleyd [options]\n"
         "\n"
         "  --listen HOST:PORT         address to serve (default 127.0.0.1:8080; port 0 picks a free one)\n"
         "  --reuseport                set SO_REUSEPORT so several parleyd processes share the port\n"
         "  --workers N                run N worker processes on the port (SO_REUSEPORT), each its own\n"
         "                             reactor; rooms are per worker (default 1)\n"
         "  --max-message-size BYTES   largest /echo message, K/M/G suffixes (default 16M); larger -> close 1009\n"
         "  --handshake-timeout MS     time allowed for the HTTP upgrade request (default 10000)\n"
         "  --close-timeout MS         time allowed for the close handshake (default 5000)\n"
         "  --ping-interval MS         heartbeat ping period, 0 disables (default 30000); at least\n"
         "                             --pong-timeout, since the next ping follows the deadline\n"
         "  --pong-timeout MS          close a connection silent this long after a ping (default 10000)\n"
         "  --max-pings-per-second N   heartbeat budget of the server (shared by the workers); past it\n"
         "                             the ping period stretches to connections / N seconds, and\n"
         "                             /metrics and stderr say so; 0 = auto, 10000 per CPU (default 0)\n"
         "  --idle-timeout MS          close (1000) connections with no message this long, 0 = never (default 0)\n"
         "  --max-buffered BYTES       write-queue cap per connection (default 1M)\n"
         "  --slow-consumer POLICY     past the cap: close (1008, default) or drop (drop messages)\n"
         "  --max-memory BYTES         budget for all write queues of a worker, K/M/G suffixes, 0 = off\n"
         "                             (default: a quarter of RAM or the cgroup limit, / --workers); near\n"
         "                             it new connections get 503, at it the largest queues are closed (1008)\n"
         "  --deflate on|off           accept permessage-deflate (RFC 7692) offers (default on)\n"
         "  --deflate-threshold BYTES  send smaller messages uncompressed, K/M suffixes (default 64)\n"
         "  --max-connections N        beyond: the oldest incomplete handshake is closed to make room,\n"
         "                             else HTTP 503 before the upgrade; 0 = fd limit (default 0)\n"
         "  --max-connections-per-ip N per source address (IPv6: per /64) and worker; beyond: HTTP 503,\n"
         "                             0 = unlimited (default 1000)\n"
         "  --max-handshakes-per-ip N  incomplete handshakes (request head not yet complete) per source\n"
         "                             address; beyond, that address's oldest is closed (503), 0 =\n"
         "                             unlimited (default 32)\n"
         "  --max-handshakes N         incomplete handshakes in all; beyond, and whenever fds run out,\n"
         "                             the oldest is closed; 0 = a quarter of the fd limit (default 0)\n"
         "  --drain-timeout MS         on SIGTERM/SIGINT: close 1001 and wait this long (default 5000)\n"
         "  --history N                chat messages kept per room and sent on join, 0 to 100000 (default 50)\n"
         "  --max-text BYTES           longest chat message text, K/M suffixes (default 4096)\n"
         "  --max-rooms-per-connection N  rooms one connection may join, 1 to 65536 (default 32)\n"
         "  --history-memory BYTES     history all rooms together may hold, K/M/G (default 64M, 0 = no\n"
         "                             cap); past it the oldest messages of the rooms holding the most go\n"
         "  --max-rooms N              live rooms in total, 0 = unlimited (default 100000); a join that\n"
         "                             would create one more gets error room_limit\n"
         "  --max-rooms-per-ip N       live rooms created from one address (IPv6: per /64), 0 = unlimited\n"
         "                             (default 1000); beyond: error room_limit\n"
         "  --echo on|off              serve /echo, the conformance and benchmark endpoint (default on)\n"
         "\n"
         "Durable history (room messages and DMs are stored before they are acked and delivered):\n"
         "  --store FILE|none          SQLite store (default parley.db in the working directory, so\n"
         "                             history survives restarts); none = memory only (the default\n"
         "                             with --workers > 1: rooms are per worker)\n"
         "  --sync normal|full         normal (default): an ack means committed to the OS; survives\n"
         "                             kill -9, the last commits may be lost on power loss. full: each\n"
         "                             commit is fsynced first; survives power loss too\n"
         "  --history-keep N           messages kept per room and DM conversation in the store, 0 = all\n"
         "                             (default 10000)\n"
         "  --recovery-limit N         most missed messages a join with since_seq gets (default 1000)\n"
         "  --dedup-window MINUTES     a msg/dm id already stored for its sender within this window gets\n"
         "                             the original ack and is not delivered again (default 10)\n"
         "  --history-max-age AGE      also delete stored messages older than AGE (e.g. 30d, 12h, 90m;\n"
         "                             seconds without a suffix), 0 = keep by count only (default 0)\n"
         "  --resume-window SECONDS    a dropped session (name, rooms) is held this long for a hello with\n"
         "                             its resume token; others see it away; 0 = off (default 120)\n"
         "  A store that is newer, corrupt or unwritable stops parleyd at start (exit 1); a write error\n"
         "  at run time answers the senders error unavailable and parleyd keeps serving.\n"
         "\n"
         "A /chat message over --max-text gets error text_too_long and the connection stays open, up to\n"
         "16 x --max-text (at least 64K) per message; a larger one closes the connection with 1009.\n"
         "\n"
         "Access control and abuse limits (on /chat and the page's WebSocket; --auth-secret covers /echo\n"
         "too):\n"
         "  --auth-secret FILE         require an HS256 token (see parley-token) signed with the secret in\n"
         "                             FILE (at least 32 bytes); sent as Authorization: Bearer, as\n"
         "                             Sec-WebSocket-Protocol parley.token.<token> (echoed in the 101), or\n"
         "                             as ?token=; missing/invalid/expired -> HTTP 401. The user is the\n"
         "                             token's sub (welcome at open, no hello needed) and its rooms claim,\n"
         "                             if any, limits joins (error rejected, reason forbidden_room: ...)\n"
         "  --allow-origin LIST        comma-separated browser origins allowed on /chat: exact\n"
         "                             (https://chat.example.com) or https://*.example.com; others -> 403.\n"
         "                             List the page's own origin too. Default: any Origin (warned at start)\n"
         "  --deny-missing-origin      refuse /chat upgrades with no Origin header (403)\n"
         "  --rate-limit N             chat messages per second per connection, 0 = off (default 20);\n"
         "                             over it: error rejected (reason rate_limited: ...), message dropped;\n"
         "                             20 in a row: close 1008\n"
         "  --rate-burst B             messages a connection may send at once, 1 to 4294 (default 40)\n"
         "  --handshake-rate N         /chat upgrades per second per source address (IPv6: per /64),\n"
         "                             burst N; over it -> HTTP 429, 0 = off (default 0)\n"
         "  --max-room-members N       members per room, 0 = unlimited (default 10000); more joins get\n"
         "                             error rejected (reason room_full: ...)\n"
         "\n"
         "TLS (wss:// and https on the same port; TLS 1.2 and 1.3, ALPN http/1.1, session tickets):\n"
         "  --tls-cert FILE            PEM certificate chain (with --tls-key); `make certs` makes a\n"
         "                             self-signed pair for local use in build/certs/\n"
         "  --tls-key FILE             PEM private key for --tls-cert\n"
         "\n"
         "  --help                     print this help\n"
         "  --version                  print the version\n"
         "\n"
         "Endpoints: / (chat page), /chat (chat protocol), /echo (WebSocket echo), /healthz, /metrics.\n";
}

uint32_t worker_ping_budget(const ParleydOptions& options, uint32_t cpus) {
  const uint64_t total = options.max_pings_per_second != 0
                             ? options.max_pings_per_second
                             : uint64_t{kPingsPerCpuPerSecond} * std::max<uint32_t>(cpus, 1);
  return static_cast<uint32_t>(std::max<uint64_t>(total / std::max<uint32_t>(options.workers, 1), 1));
}

bool parse_parleyd_options(const std::vector<std::string>& args, ParleydOptions& out, std::string& error) {
  ParleydOptions parsed = out;  // `out` changes only when everything parsed
  std::vector<ValueOption> table = value_options(parsed);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      parsed.show_help = true;
      continue;
    }
    if (arg == "--version") {
      parsed.show_version = true;
      continue;
    }
    if (arg == "--reuseport") {
      parsed.reuse_port = true;
      continue;
    }
    if (arg == "--deny-missing-origin") {
      parsed.deny_missing_origin = true;
      continue;
    }
    bool takes_value = arg == "--listen" || arg == "--slow-consumer" || arg == "--auth-secret" ||
                       arg == "--allow-origin" || arg == "--deflate" || arg == "--tls-cert" || arg == "--tls-key" ||
                       arg == "--echo" || arg == "--store" || arg == "--sync" || arg == "--history-max-age";
    const ValueOption* option = nullptr;
    for (const ValueOption& candidate : table) {
      if (arg == candidate.name) option = &candidate;
    }
    if (!takes_value && option == nullptr) {
      error = "unknown option '" + arg + "' (see --help)";
      return false;
    }
    if (i + 1 >= args.size()) {
      error = "option " + arg + " needs a value";
      return false;
    }
    const std::string& value = args[++i];
    if (arg == "--listen") {
      parsed.listen = value;
    } else if (arg == "--auth-secret") {
      if (value.empty()) {
        error = "option --auth-secret needs a file name";
        return false;
      }
      parsed.auth_secret_file = value;
    } else if (arg == "--tls-cert" || arg == "--tls-key") {
      if (value.empty()) {
        error = "option " + arg + " needs a file name";
        return false;
      }
      (arg == "--tls-cert" ? parsed.tls_cert_file : parsed.tls_key_file) = value;
    } else if (arg == "--allow-origin") {
      OriginPolicy policy;
      std::string why;
      if (!policy.parse(value, why)) {
        error = "invalid --allow-origin: " + why;
        return false;
      }
      if (policy.empty()) {
        error = "invalid --allow-origin '" + value + "' (no origin listed)";
        return false;
      }
      // Repeated flags add to the list.
      parsed.allow_origin = parsed.allow_origin.empty() ? value : parsed.allow_origin + "," + value;
    } else if (arg == "--slow-consumer") {
      if (value != "close" && value != "drop") {
        error = "invalid --slow-consumer '" + value + "' (close or drop)";
        return false;
      }
      parsed.slow_consumer_drop = value == "drop";
    } else if (arg == "--deflate") {
      if (value != "on" && value != "off") {
        error = "invalid --deflate '" + value + "' (on or off)";
        return false;
      }
      parsed.deflate = value == "on";
    } else if (arg == "--store") {
      if (value.empty()) {
        error = "option --store needs a file name or none";
        return false;
      }
      parsed.store = value;
      parsed.store_given = true;
    } else if (arg == "--history-max-age") {
      if (!parse_duration_seconds(value, parsed.history_max_age_seconds)) {
        error = "invalid --history-max-age '" + value + "' (e.g. 30d, 12h, 90m, 3600, or 0 for off)";
        return false;
      }
    } else if (arg == "--sync") {
      if (value != "normal" && value != "full") {
        error = "invalid --sync '" + value + "' (normal or full)";
        return false;
      }
      parsed.sync_full = value == "full";
    } else if (arg == "--echo") {
      if (value != "on" && value != "off") {
        error = "invalid --echo '" + value + "' (on or off)";
        return false;
      }
      parsed.echo = value == "on";
    } else if (!parse_value(*option, value)) {
      error = "invalid " + arg + " '" + value + "' (" + option->expected + ")";
      return false;
    }
  }
  if (parsed.tls_cert_file.empty() != parsed.tls_key_file.empty()) {
    error = "--tls-cert and --tls-key must be given together";
    return false;
  }
  if (parsed.workers > 1 && parsed.store != "none") {
    // Rooms are per worker, so workers sharing one store would interleave unrelated seqs: the
    // default store gives way to memory only; an explicit one is an error.
    if (parsed.store_given) {
      error = "--workers > 1 needs --store none (rooms are per worker; one store file cannot serve several)";
      return false;
    }
    parsed.store = "none";
  }
  out = parsed;
  return true;
}

}  // namespace chat
