#pragma once
// parley-cli's command line, parsed and validated in one place. Pure: no I/O.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "reactor/tls_context.h"
#include "tools/ws_url.h"

namespace tools::cli {

struct CliOptions {
  std::string url_text;  // the URL as given, for messages
  WsUrl url;             // parsed; ws:// or wss://
  reactor::TlsClientOptions tls;  // wss://: -k/--insecure, --ca-file
  // -H "Name: value" and --token, in order, checked to hold no CR/LF and no header the client
  // manages itself (Upgrade, Connection, Sec-WebSocket-*).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string subprotocol;  // --subprotocol
  std::string chat_name;    // --chat NAME: speak the chat protocol; empty for plain messages
  uint32_t retries = 5;     // reconnect attempts after a failure before giving up
  std::chrono::milliseconds retry_delay{500};    // ceiling of the first backoff delay
  std::chrono::milliseconds retry_max{30000};    // no backoff delay ceiling grows past this
  std::chrono::milliseconds connect_timeout{5000};  // TCP connect plus the opening handshake
  bool quiet = false;  // -q: no status lines on stderr (errors still go there)
};

struct CliOptionsParse {
  enum class Status : uint8_t { kRun, kHelp, kUsageError };
  Status status = Status::kUsageError;
  CliOptions options;  // valid for kRun
  std::string error;   // one line for kUsageError
};

// Parses argv[1, argc). Options take their value as the next argument or after '='.
CliOptionsParse parse_cli_options(int argc, const char* const* argv);

// The --help text.
std::string_view cli_usage();

}  // namespace tools::cli
