#pragma once
// parleyd's command line (DESIGN.md "Interfaces that others script against").
#include <cstdint>
#include <string>
#include <vector>

namespace chat {

inline constexpr const char* kParleyVersion = "0.1.0";

struct ParleydOptions {
  std::string listen = "127.0.0.1:8080";
  bool reuse_port = false;
  uint64_t max_message_size = 16u << 20;
  uint32_t handshake_timeout_ms = 10000;
  uint32_t close_timeout_ms = 5000;
  uint32_t history_size = 50;              // chat: messages kept per room (0: none)
  uint64_t max_text_bytes = 4096;          // chat: longer msg/dm text -> error text_too_long
  uint32_t max_rooms_per_connection = 32;  // chat: more joins -> error too_many_rooms
  bool show_help = false;
  bool show_version = false;
};

// Parses argv; on failure returns false and sets `error` to one line for the user.
bool parse_parleyd_options(const std::vector<std::string>& args, ParleydOptions& out, std::string& error);

// The --help text.
std::string parleyd_usage();

}  // namespace chat
