// Server messages of big rooms (issue 18, docs/protocol.md "Presence in big rooms"): the batched
// `members` event and the end of a paged `who`. Kept apart from chat_codec.cpp, which is at its
// size limit. Not on a per-message hot path: one `members` per room per batch.
#include <span>
#include <string>
#include <string_view>

#include "chat/chat_codec.h"

namespace chat {

namespace {

void append_names(std::string& out, std::span<const std::string_view> names) {
  out += '[';
  for (size_t i = 0; i < names.size(); ++i) {
    if (i != 0) out += ',';
    append_json_string(out, names[i]);
  }
  out += ']';
}

}  // namespace

void write_members(std::string& out, std::string_view room, std::span<const std::string_view> joined,
                   std::span<const std::string_view> left, uint64_t count) {
  out += R"({"type":"members","room":)";
  append_json_string(out, room);
  out += R"(,"joined":)";
  append_names(out, joined);
  out += R"(,"left":)";
  append_names(out, left);
  out += R"(,"count":)";
  out += std::to_string(count);
  out += '}';
}

void write_members_counts(std::string& out, std::string_view room, uint64_t joined, uint64_t left, uint64_t count) {
  out += R"({"type":"members","room":)";
  append_json_string(out, room);
  out += R"(,"joined_count":)";
  out += std::to_string(joined);
  out += R"(,"left_count":)";
  out += std::to_string(left);
  out += R"(,"count":)";
  out += std::to_string(count);
  out += '}';
}

void write_who_end_paged(std::string& out, uint64_t count, std::string_view next) {
  out += R"(],"count":)";
  out += std::to_string(count);
  if (!next.empty()) {
    out += R"(,"next":)";
    append_json_string(out, next);
  }
  out += '}';
}

}  // namespace chat
