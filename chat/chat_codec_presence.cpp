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

void write_members(std::string& out, std::string_view room, const MembersNames& names, uint64_t count) {
  out += R"({"type":"members","room":)";
  append_json_string(out, room);
  out += R"(,"joined":)";
  append_names(out, names.joined);
  out += R"(,"left":)";
  append_names(out, names.left);
  if (!names.away.empty()) {
    out += R"(,"away":)";
    append_names(out, names.away);
  }
  if (!names.back.empty()) {
    out += R"(,"back":)";
    append_names(out, names.back);
  }
  out += R"(,"count":)";
  out += std::to_string(count);
  out += '}';
}

void write_members_counts(std::string& out, std::string_view room, const MembersCounts& counts, uint64_t count) {
  out += R"({"type":"members","room":)";
  append_json_string(out, room);
  out += R"(,"joined_count":)";
  out += std::to_string(counts.joined);
  out += R"(,"left_count":)";
  out += std::to_string(counts.left);
  if (counts.away != 0) {
    out += R"(,"away_count":)";
    out += std::to_string(counts.away);
  }
  if (counts.back != 0) {
    out += R"(,"back_count":)";
    out += std::to_string(counts.back);
  }
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
