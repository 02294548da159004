#include "tools/chat_display.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdio>

namespace tools::cli {

namespace {

// Reads a string field; false when absent or not a string.
bool get_string(simdjson::dom::object object, std::string_view key, std::string_view& out) {
  return object[key].get_string().get(out) == simdjson::SUCCESS;
}

std::string raw(std::string_view json) { return "? " + printable(json) + "\n"; }

// Names listed in one line of a `members` event; the rest are counted.
constexpr size_t kNamesShown = 10;

// "alice, bob and 3 more" from a `members` list; false when `key` is not an array of strings.
bool name_list(simdjson::dom::object object, std::string_view key, std::string& out, size_t& count) {
  simdjson::dom::array names;
  if (object[key].get_array().get(names) != simdjson::SUCCESS) return false;
  count = 0;
  for (simdjson::dom::element element : names) {
    std::string_view name;
    if (element.get_string().get(name) != simdjson::SUCCESS) return false;
    if (count < kNamesShown) out += (count == 0 ? "" : ", ") + printable(name);
    ++count;
  }
  if (count > kNamesShown) out += " and " + std::to_string(count - kNamesShown) + " more";
  return true;
}

// A batched presence event of a big room (issue 18, docs/protocol.md "Presence in big rooms"):
// "* alice, bob joined lobby (12 here)", "* dave is away from lobby (12 here)", "* carol left
// lobby (11 here)", or with counts only "* 57 joined, 3 left, 2 away lobby (10000 here)" (away
// and back only when there are any). False when its fields are missing.
bool format_members(simdjson::dom::object object, std::string_view room, std::string& out) {
  uint64_t count = 0;
  if (object["count"].get_uint64().get(count) != simdjson::SUCCESS) return false;
  const std::string here = " " + printable(room) + " (" + std::to_string(count) + " here)\n";
  std::string joined, left;
  size_t joins = 0, leaves = 0;
  if (name_list(object, "joined", joined, joins) && name_list(object, "left", left, leaves)) {
    // Absent lists are empty; in the order the changes apply: joins, away/back, leaves.
    std::string away, back;
    size_t aways = 0, backs = 0;
    if (object["away"].error() == simdjson::SUCCESS && !name_list(object, "away", away, aways)) return false;
    if (object["back"].error() == simdjson::SUCCESS && !name_list(object, "back", back, backs)) return false;
    if (joins != 0) out += "* " + joined + " joined" + here;
    if (aways != 0) out += "* " + away + (aways == 1 ? " is" : " are") + " away from" + here;
    if (backs != 0) out += "* " + back + (backs == 1 ? " is" : " are") + " back in" + here;
    if (leaves != 0) out += "* " + left + " left" + here;
    return true;
  }
  uint64_t joined_count = 0, left_count = 0, away_count = 0, back_count = 0;
  if (object["joined_count"].get_uint64().get(joined_count) != simdjson::SUCCESS ||
      object["left_count"].get_uint64().get(left_count) != simdjson::SUCCESS) {
    return false;
  }
  if (object["away_count"].get_uint64().get(away_count) != simdjson::SUCCESS) away_count = 0;  // absent
  if (object["back_count"].get_uint64().get(back_count) != simdjson::SUCCESS) back_count = 0;
  out = "* " + std::to_string(joined_count) + " joined, " + std::to_string(left_count) + " left";
  if (away_count != 0) out += ", " + std::to_string(away_count) + " away";
  if (back_count != 0) out += ", " + std::to_string(back_count) + " back";
  out += here;
  return true;
}

}  // namespace

struct ServerMessageFormatter::Impl {
  simdjson::dom::parser parser;
};

ServerMessageFormatter::ServerMessageFormatter() : impl_(std::make_unique<Impl>()) {}
ServerMessageFormatter::~ServerMessageFormatter() = default;

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte != 0x7f) {
      out += c;
    } else if (c == '\t') {
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      char escape[5];
      std::snprintf(escape, sizeof escape, "\\x%02x", byte);
      out += escape;
    }
  }
  return out;
}

ServerEvent ServerMessageFormatter::format(std::string_view json) {
  ServerEvent event;
  simdjson::padded_string padded(json);
  simdjson::dom::object object;
  if (impl_->parser.parse(padded).get_object().get(object) != simdjson::SUCCESS) {
    event.display = raw(json);
    return event;
  }
  std::string_view type;
  if (!get_string(object, "type", type)) {
    event.display = raw(json);
    return event;
  }
  event.type = std::string(type);
  std::string_view room, user, from, text, name, code, reason;
  const bool has_room = get_string(object, "room", room);
  if (has_room) event.room = std::string(room);
  bool shown = false;  // the fields the type needs were present
  std::string& out = event.display;
  uint64_t number = 0;
  if (object["seq"].get_uint64().get(number) == simdjson::SUCCESS) event.seq = number;
  std::string_view field;
  if (get_string(object, "id", field)) event.id = std::string(field);

  if (type == "welcome") {
    if ((shown = get_string(object, "name", name))) {
      bool resumed = false;
      if (object["resumed"].get_bool().get(resumed) != simdjson::SUCCESS) resumed = false;
      out = "* welcome " + printable(name) + (resumed ? " (session resumed)\n" : "\n");
    }
    if (get_string(object, "resume", field)) event.resume = std::string(field);
  } else if (type == "joined" || type == "left") {
    if ((shown = has_room && get_string(object, "user", user))) {
      out = "* " + printable(user) + " " + std::string(type) + " " + printable(room) + "\n";
    }
  } else if (type == "msg") {
    if ((shown = has_room && get_string(object, "from", from) && get_string(object, "text", text))) {
      out = "[" + printable(room) + "] " + printable(from) + ": " + printable(text) + "\n";
    }
  } else if (type == "dm") {
    if ((shown = get_string(object, "from", from) && get_string(object, "text", text))) {
      out = "(dm) " + printable(from) + ": " + printable(text) + "\n";
    }
  } else if (type == "typing") {
    bool on = false;
    if ((shown = has_room && get_string(object, "user", user) &&
                 object["on"].get_bool().get(on) == simdjson::SUCCESS)) {
      out = "* " + printable(user) + (on ? " is typing in " : " stopped typing in ") + printable(room) + "\n";
    }
  } else if (type == "who") {
    simdjson::dom::array users;
    if ((shown = has_room && object["users"].get_array().get(users) == simdjson::SUCCESS)) {
      std::string list;
      for (simdjson::dom::element element : users) {
        std::string_view member;
        if (element.get_string().get(member) != simdjson::SUCCESS) continue;
        if (!list.empty()) list += ", ";
        list += printable(member);
      }
      out = "* in " + printable(room) + ": " + (list.empty() ? "nobody" : list) + "\n";
      // A page of a big room (issue 18): how many in all, and how to ask for the next page.
      uint64_t count = 0;
      if (object["count"].get_uint64().get(count) == simdjson::SUCCESS && count != users.size()) {
        out += "* " + std::to_string(users.size()) + " of " + std::to_string(count) + " members shown";
        std::string_view next;
        out += get_string(object, "next", next) ? "; more: /who " + printable(room) + " " + printable(next) + "\n"
                                                : "\n";
      }
    }
  } else if (type == "members") {
    shown = has_room && format_members(object, room, out);
  } else if (type == "history") {
    simdjson::dom::array messages;
    if ((shown = has_room && object["messages"].get_array().get(messages) == simdjson::SUCCESS)) {
      const size_t count = messages.size();
      out = "* history of " + printable(room) + ": " + std::to_string(count) +
            (count == 1 ? " message\n" : " messages\n");
      for (simdjson::dom::element element : messages) {
        simdjson::dom::object item;
        if (element.get_object().get(item) == simdjson::SUCCESS && item["seq"].get_uint64().get(number) == simdjson::SUCCESS) {
          event.seq = std::max(event.seq, number);
        }
        if (element.get_object().get(item) != simdjson::SUCCESS || !get_string(item, "from", from) ||
            !get_string(item, "text", text)) {
          continue;
        }
        out += "[" + printable(room) + "] " + printable(from) + ": " + printable(text) + "\n";
      }
    }
  } else if (type == "ack") {
    shown = true;  // the sender's own message went through: nothing to show
  } else if (type == "error") {
    if ((shown = get_string(object, "code", code))) {
      event.code = std::string(code);
      if (!get_string(object, "reason", reason)) reason = {};
      out = "! error " + printable(code) + ": " + printable(reason) + "\n";
    }
  } else if (type == "presence") {
    std::string_view status;
    if ((shown = has_room && get_string(object, "user", user) && get_string(object, "status", status))) {
      out = "* " + printable(user) + (status == "away" ? " is away from " : " is back in ") + printable(room) + "\n";
    }
  } else if (type == "pong") {
    shown = true;
    out = "* pong\n";
  }
  if (!shown) out = raw(json);
  return event;
}

}  // namespace tools::cli
