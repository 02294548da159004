#pragma once
// parley-load's side of the chat protocol (docs/protocol.md) for the broadcast and chat scenarios: the
// publish-time stamp a message's text carries, the client messages a load connection sends, and
// a cheap look at a server message's "type" and text. A load generator must not spend its core
// on JSON, so nothing here parses JSON in full: parleyd writes compact JSON with "type" first,
// and the look-ups fall back to a key search for servers that format differently.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tools {

// The stamp is "t=" + the publisher's monotonic send time in decimal nanoseconds + ";".
inline constexpr size_t kMaxStampLength = 2 + 20 + 1;
// Filler after the stamp up to the requested text size: plain ASCII, never escaped in JSON.
inline constexpr char kTextFiller = 'x';

// Length of the text write_stamped_text() writes: `size`, or the stamp's length when longer.
size_t stamped_text_length(uint64_t stamp_ns, size_t size);
// Writes the stamp for `stamp_ns`, then kTextFiller up to `size` bytes, to `out` (which holds
// stamped_text_length() bytes). Returns the length written.
size_t write_stamped_text(uint64_t stamp_ns, size_t size, char* out);
// Reads the stamp at the front of `text` into `stamp_ns`. False unless `text` starts with
// "t=", one or more digits and ";", and the number fits 64 bits.
bool parse_stamp(std::string_view text, uint64_t& stamp_ns);

// What a server message is, judged by its "type" alone.
enum class ServerKind : uint8_t { kWelcome, kHistory, kJoined, kLeft, kMsg, kAck, kError, kOther };
// The kind of `message` (one JSON object); kOther for a type not listed or no readable "type".
ServerKind classify_server_message(std::string_view message);
// The raw (still escaped) value of the top-level-looking string field `key` in `message`, from
// just after its opening quote to the end of `message`; empty when there is no such field.
// Matches `"key"` followed by ':' only, so a value equal to the key's name is skipped.
std::string_view string_field_tail(std::string_view message, std::string_view key);
// Reads the stamp at the front of a `msg` message's "text". False when it has none.
bool find_stamp(std::string_view message, uint64_t& stamp_ns);
// True when the string field `key` of `message` is exactly `value`, which must need no JSON
// escaping (a user or room name: docs/protocol.md "Names").
bool field_equals(std::string_view message, std::string_view key, std::string_view value);

// {"type":"hello","name":...} (with "resume" when `resume` is not empty: docs/protocol.md
// "Session resume") and {"type":"join","room":...}, appended to `out`.
void append_hello(std::string& out, std::string_view name, std::string_view resume = {});
void append_join(std::string& out, std::string_view room);
// Length of the publish message write_publish() writes.
size_t publish_length(std::string_view room, uint64_t stamp_ns, size_t text_size, uint64_t id = 0);
// Writes {"type":"msg","room":<room>,"text":<stamped text>} to `out` (publish_length() bytes)
// and returns its length; with `id` != 0 also "id":"<id>" (docs/protocol.md "Exactly-once
// sends": a resend with the same id is stored once). `room` must be a valid room name
// (docs/protocol.md "Names"), which needs no escaping.
size_t write_publish(std::string_view room, uint64_t stamp_ns, size_t text_size, char* out, uint64_t id = 0);
// The "seq" of an ack (or the last "seq" in a history: its newest message); 0 when none.
uint64_t last_seq_field(std::string_view message);

// The chat scenario's rooms: user u's k-th room is (u * per_user + k) mod rooms, so a user's
// rooms are distinct (per_user <= rooms) and room sizes differ by at most one member.
struct ChatRoomPlan {
  uint64_t users = 1;
  uint64_t rooms = 1;
  uint64_t per_user = 1;

  // Room index (< rooms) of user `user`'s k-th room (k < per_user).
  uint64_t room_of(uint64_t user, uint64_t k) const { return (user * per_user + k) % rooms; }
  // Users whose rooms include `room`.
  uint64_t members(uint64_t room) const;
};

// Per-user choices in the chat scenario, the same in every worker process: hashes of the run's
// seed, the user's global index and (for idling) the second, so no process has to ask another.
// True when `user` sends nothing in second `second` of the run (about `share` of all seconds).
bool chat_user_idle(uint64_t seed, uint64_t user, uint64_t second, double share);
// True when `user` is one of the (about `share` of all) users that reconnect once; then
// `at_fraction` (in [0, 1)) says when, as a fraction of the time it has for it.
bool chat_user_reconnects(uint64_t seed, uint64_t user, double share, double& at_fraction);

}  // namespace tools
