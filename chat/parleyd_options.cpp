#include "chat/parleyd_options.h"

#include <charconv>

namespace chat {

namespace {

// Parses a positive decimal with an optional K/M/G (binary) suffix.
bool parse_size(const std::string& text, uint64_t& out) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return false;
  std::string suffix(end, text.data() + text.size());
  int shift = 0;
  if (suffix == "K" || suffix == "k" || suffix == "KiB") shift = 10;
  else if (suffix == "M" || suffix == "MiB") shift = 20;
  else if (suffix == "G" || suffix == "GiB") shift = 30;
  else if (!suffix.empty()) return false;
  if (value == 0 || value > (UINT64_MAX >> shift)) return false;
  out = value << shift;
  return true;
}

bool parse_ms(const std::string& text, uint32_t& out) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 86400000) return false;
  out = static_cast<uint32_t>(value);
  return true;
}

// Parses a decimal in [min, max].
bool parse_count(const std::string& text, uint32_t min, uint32_t max, uint32_t& out) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data() || end != text.data() + text.size() || value < min || value > max) {
    return false;
  }
  out = static_cast<uint32_t>(value);
  return true;
}

}  // namespace

std::string parleyd_usage() {
  return "usage: parleyd [options]\n"
         "\n"
         "  --listen HOST:PORT         address to serve (default 127.0.0.1:8080; port 0 picks a free one)\n"
         "  --reuseport                set SO_REUSEPORT so several parleyd processes share the port\n"
         "  --max-message-size BYTES   largest message accepted, K/M/G suffixes (default 16M); larger -> close 1009\n"
         "  --handshake-timeout MS     time allowed for the HTTP upgrade request (default 10000)\n"
         "  --close-timeout MS         time allowed for the close handshake (default 5000)\n"
         "  --history N                chat messages kept per room and sent on join, 0 to 100000 (default 50)\n"
         "  --max-text BYTES           longest chat message text, K/M suffixes (default 4096)\n"
         "  --max-rooms-per-connection N  rooms one connection may join, 1 to 65536 (default 32)\n"
         "  --help                     print this help\n"
         "  --version                  print the version\n"
         "\n"
         "Endpoints: /chat (chat protocol), /echo (WebSocket echo), /healthz, /metrics.\n";
}

bool parse_parleyd_options(const std::vector<std::string>& args, ParleydOptions& out, std::string& error) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&](std::string& into) {
      if (i + 1 >= args.size()) {
        error = "option " + arg + " needs a value";
        return false;
      }
      into = args[++i];
      return true;
    };
    std::string v;
    if (arg == "--help" || arg == "-h") {
      out.show_help = true;
    } else if (arg == "--version") {
      out.show_version = true;
    } else if (arg == "--reuseport") {
      out.reuse_port = true;
    } else if (arg == "--listen") {
      if (!value(out.listen)) return false;
    } else if (arg == "--max-message-size") {
      if (!value(v)) return false;
      if (!parse_size(v, out.max_message_size)) {
        error = "invalid --max-message-size '" + v + "' (a size like 65536, 64K or 16M)";
        return false;
      }
    } else if (arg == "--handshake-timeout") {
      if (!value(v)) return false;
      if (!parse_ms(v, out.handshake_timeout_ms)) {
        error = "invalid --handshake-timeout '" + v + "' (milliseconds, 1 to 86400000)";
        return false;
      }
    } else if (arg == "--close-timeout") {
      if (!value(v)) return false;
      if (!parse_ms(v, out.close_timeout_ms)) {
        error = "invalid --close-timeout '" + v + "' (milliseconds, 1 to 86400000)";
        return false;
      }
    } else if (arg == "--history") {
      if (!value(v)) return false;
      if (!parse_count(v, 0, 100000, out.history_size)) {
        error = "invalid --history '" + v + "' (messages per room, 0 to 100000)";
        return false;
      }
    } else if (arg == "--max-text") {
      if (!value(v)) return false;
      if (!parse_size(v, out.max_text_bytes) || out.max_text_bytes > (64u << 20)) {
        error = "invalid --max-text '" + v + "' (bytes, 1 to 64M, e.g. 4096 or 16K)";
        return false;
      }
    } else if (arg == "--max-rooms-per-connection") {
      if (!value(v)) return false;
      if (!parse_count(v, 1, 65536, out.max_rooms_per_connection)) {
        error = "invalid --max-rooms-per-connection '" + v + "' (1 to 65536)";
        return false;
      }
    } else {
      error = "unknown option '" + arg + "' (see --help)";
      return false;
    }
  }
  return true;
}

}  // namespace chat
