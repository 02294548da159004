// Server messages of session resume (issue 14, docs/protocol.md "Session resume"): the welcome
// that carries a resume token, its resumed form listing the rooms held, and the away/back
// presence event. Kept apart from chat_codec.cpp, which is at its size limit.
#include <string>
#include <string_view>

#include "chat/chat_codec.h"

namespace chat {

void write_welcome_resume(std::string& out, std::string_view name, uint64_t max_text_bytes, std::string_view token) {
  out += R"({"type":"welcome","name":)";
  append_json_string(out, name);
  if (max_text_bytes != 0) {
    out += R"(,"max_text":)";
    out += std::to_string(max_text_bytes);
  }
  out += R"(,"resume":)";
  append_json_string(out, token);
  out += '}';
}

void write_resumed_begin(std::string& out) {
  if (!out.empty() && out.back() == '}') out.pop_back();
  out += R"(,"resumed":true,"rooms":[)";
}

void write_resumed_room(std::string& out, std::string_view room, bool first) {
  if (!first) out += ',';
  append_json_string(out, room);
}

void write_resumed_end(std::string& out) { out += "]}"; }

void write_away(std::string& out, std::string_view room, std::string_view user, bool away) {
  out += R"({"type":"presence","room":)";
  append_json_string(out, room);
  out += R"(,"user":)";
  append_json_string(out, user);
  out += away ? R"(,"status":"away"})" : R"(,"status":"back"})";
}

}  // namespace chat
