#include "tools/cli_options.h"

#include <algorithm>
#include <charconv>

#include "chat/chat_codec.h"

namespace tools::cli {

namespace {

constexpr uint64_t kMaxMilliseconds = 24ull * 3600 * 1000;
constexpr uint64_t kMaxRetries = 1'000'000;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return (x | 0x20) == (y | 0x20); });
}

// RFC 7230 3.2.6: a header name is a token.
bool is_token(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// A header value is visible characters, spaces and tabs: no CR or LF (no header injection).
bool is_header_value(std::string_view value) {
  return std::all_of(value.begin(), value.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte == '\t' || (byte >= 0x20 && byte != 0x7f);
  });
}

bool parse_number(std::string_view text, uint64_t max, uint64_t& out) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > max) return false;
  out = value;
  return true;
}

CliOptionsParse usage_error(std::string error) {
  CliOptionsParse result;
  result.status = CliOptionsParse::Status::kUsageError;
  result.error = std::move(error);
  return result;
}

std::string check_header(std::string_view name, std::string_view value) {
  if (!is_token(name)) return "bad header name \"" + std::string(name) + "\"";
  if (!is_header_value(value)) return "header " + std::string(name) + " has a control character in its value";
  // The opening handshake's own headers (RFC 6455 4.1) are the client's to write.
  for (std::string_view managed : {"Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
                                   "Sec-WebSocket-Accept", "Sec-WebSocket-Extensions", "Content-Length",
                                   "Transfer-Encoding"}) {
    if (iequals(name, managed)) return "header " + std::string(managed) + " is set by parley-cli itself";
  }
  if (iequals(name, "Sec-WebSocket-Protocol")) return "use --subprotocol instead of -H Sec-WebSocket-Protocol";
  return {};
}

}  // namespace

CliOptionsParse parse_cli_options(int argc, const char* const* argv) {
  CliOptionsParse result;
  CliOptions& options = result.options;
  bool have_url = false;
  bool have_auth = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      result.status = CliOptionsParse::Status::kHelp;
      return result;
    }
    if (arg == "-q" || arg == "--quiet") {
      options.quiet = true;
      continue;
    }
    if (arg == "-k" || arg == "--insecure") {
      options.tls.insecure = true;
      continue;
    }
    if (arg.starts_with("-") && arg.size() > 1) {
      std::string_view name = arg;
      std::string_view value;
      bool has_value = false;
      if (const size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        has_value = true;
      }
      static constexpr std::string_view kWithValue[] = {"-H", "--header", "--token", "--subprotocol", "-s",
                                                        "--chat", "--retries", "--retry-delay", "--retry-max",
                                                        "--connect-timeout", "--ca-file"};
      if (std::find(std::begin(kWithValue), std::end(kWithValue), name) == std::end(kWithValue)) {
        return usage_error("unknown option " + std::string(name));
      }
      if (!has_value) {
        if (i + 1 >= argc) return usage_error(std::string(name) + " needs a value");
        value = argv[++i];
      }
      if (name == "-H" || name == "--header") {
        const size_t colon = value.find(':');
        if (colon == std::string_view::npos) return usage_error("-H wants \"Name: value\", got \"" + std::string(value) + "\"");
        std::string_view header_name = value.substr(0, colon);
        std::string_view header_value = value.substr(colon + 1);
        while (!header_value.empty() && (header_value.front() == ' ' || header_value.front() == '\t')) {
          header_value.remove_prefix(1);
        }
        if (std::string error = check_header(header_name, header_value); !error.empty()) return usage_error(error);
        if (iequals(header_name, "Authorization")) {
          if (have_auth) return usage_error("Authorization given twice (-H Authorization or --token)");
          have_auth = true;
        }
        options.headers.emplace_back(header_name, header_value);
      } else if (name == "--token") {
        if (value.empty() || !is_header_value(value)) return usage_error("--token needs a value without control characters");
        if (have_auth) return usage_error("Authorization given twice (-H Authorization or --token)");
        have_auth = true;
        options.headers.emplace_back("Authorization", "Bearer " + std::string(value));
      } else if (name == "--subprotocol" || name == "-s") {
        if (!is_token(value)) return usage_error("--subprotocol needs a token (letters, digits, !#$%&'*+-.^_`|~)");
        options.subprotocol = std::string(value);
      } else if (name == "--chat") {
        if (!chat::is_valid_user_name(value)) {
          return usage_error("--chat needs a user name: 1-32 of A-Z a-z 0-9 _ . -, got \"" + std::string(value) + "\"");
        }
        options.chat_name = std::string(value);
      } else if (name == "--ca-file") {
        if (value.empty()) return usage_error("--ca-file needs a PEM file");
        options.tls.ca_file = std::string(value);
      } else if (name == "--retries") {
        uint64_t n = 0;
        if (!parse_number(value, kMaxRetries, n)) return usage_error("--retries needs a whole number up to 1000000");
        options.retries = static_cast<uint32_t>(n);
      } else {
        uint64_t ms = 0;
        if (!parse_number(value, kMaxMilliseconds, ms)) {
          return usage_error(std::string(name) + " needs milliseconds (a whole number up to 86400000)");
        }
        const std::chrono::milliseconds duration(static_cast<int64_t>(ms));
        if (name == "--retry-delay") {
          options.retry_delay = duration;
        } else if (name == "--retry-max") {
          options.retry_max = duration;
        } else {
          if (ms == 0) return usage_error("--connect-timeout must be above 0");
          options.connect_timeout = duration;
        }
      }
      continue;
    }
    if (have_url) return usage_error("more than one URL (" + options.url_text + ", " + std::string(arg) + ")");
    have_url = true;
    options.url_text = std::string(arg);
  }
  if (!have_url) return usage_error("no URL given");
  if (!parse_ws_url(options.url_text, options.url)) {
    return usage_error("bad URL \"" + options.url_text + "\": expected ws://host[:port][/path] or wss://...");
  }
  if (!options.url.secure && (options.tls.insecure || !options.tls.ca_file.empty())) {
    return usage_error("--insecure and --ca-file apply to wss:// URLs only");
  }
  if (options.retry_max < options.retry_delay) return usage_error("--retry-max is below --retry-delay");
  result.status = CliOptionsParse::Status::kRun;
  return result;
}

std::string_view cli_usage() {
  return "usage: parley-cli [options] ws://HOST[:PORT][/PATH] | wss://HOST[:PORT][/PATH]\n"
         "\n"
         "An interactive WebSocket client. Each line read from stdin is sent as a text message;\n"
         "each message received is printed on stdout (binary ones as <binary N bytes: HEX>).\n"
         "Status lines (connected, closed, reconnecting) and errors go to stderr. End of stdin,\n"
         "Ctrl-C or SIGTERM close the connection cleanly (code 1000); a second Ctrl-C quits at once.\n"
         "\n"
         "options:\n"
         "  -H, --header 'Name: value'  add a request header (repeatable)\n"
         "  --token T                   send 'Authorization: Bearer T'\n"
         "  -s, --subprotocol P         offer subprotocol P (Sec-WebSocket-Protocol)\n"
         "  --chat NAME                 speak the parley chat protocol as NAME (see below)\n"
         "  --retries N                 reconnect attempts after a failure (default 5; 0: none)\n"
         "  --retry-delay MS            first backoff ceiling (default 500); doubles per attempt,\n"
         "                              each delay drawn uniformly from [0, ceiling]\n"
         "  --retry-max MS              backoff ceiling cap (default 30000)\n"
         "  --connect-timeout MS        TCP connect, TLS and opening handshake (default 5000)\n"
         "  --ca-file FILE              wss://: trust the certificates in this PEM file instead of\n"
         "                              the system's (e.g. a self-signed build/certs/cert.pem)\n"
         "  -k, --insecure              wss://: do not verify the server's certificate (tests only)\n"
         "  -q, --quiet                 no status lines on stderr\n"
         "  -h, --help                  this text\n"
         "\n"
         "Reconnects (with exponential backoff and full jitter) when the connection fails or drops,\n"
         "when the handshake gets a 5xx or 429, and when the server closes with 1001, 1011-1014.\n"
         "A connection that stayed up 2 s renews the retry budget.\n"
         "\n"
         "chat mode (--chat NAME, against /chat): sends hello, then reads commands:\n"
         "  /join ROOM, /leave [ROOM], /msg ROOM TEXT, TEXT (to the current room), /dm USER TEXT,\n"
         "  /who [ROOM] [AFTER], /history [ROOM] [LIMIT], /ping, /quit, /help\n"
         "and prints events as '[lobby] alice: hi', '* bob joined lobby', '(dm) alice: psst',\n"
         "'! error CODE: reason'. After a reconnect it says hello again and rejoins its rooms.\n"
         "\n"
         "wss:// verifies the server's certificate and that it names the URL's host (or IP address);\n"
         "a refused certificate ends the run at once with OpenSSL's reason and status 1.\n"
         "\n"
         "exit status: 0 after a clean close, 1 when the connection failed (after the retries, or\n"
         "refused for good: 4xx, protocol error, server close with an error code), 2 on bad usage.\n";
}

}  // namespace tools::cli
