#pragma once
// The chat wire protocol on /chat (docs/protocol.md): one JSON object per WebSocket text
// message. Parsing client messages (simdjson) and writing server messages. Pure: no I/O.
#include <cstddef>
#include <cstdint>
#include <string>
#include <span>
#include <string_view>

namespace chat {

enum class ClientType : uint8_t { kHello, kJoin, kLeave, kMsg, kDm, kTyping, kWho, kHistory, kPing };

// Error codes carried in `error` messages: stable strings clients can switch on.
enum class ChatError : uint8_t {
  kNone,
  kBadJson,        // "bad_json": not a JSON object
  kUnknownType,    // "unknown_type": missing or unknown "type"
  kMissingField,   // "missing_field": a required field is absent or of the wrong JSON type
  kInvalidName,    // "invalid_name": user name not 1-32 of [A-Za-z0-9_.-]
  kInvalidRoom,    // "invalid_room": room name not 1-64 of [A-Za-z0-9_.-] (optionally a leading '#')
  kTextTooLong,    // "text_too_long": text over the configured limit
  kNameTaken,      // "name_taken"
  kNotIdentified,  // "not_identified": anything but hello before hello
  kAlreadyIdentified,  // "already_identified": a second hello
  kUnknownRoom,    // "unknown_room": not a member / room does not exist
  kUnknownUser,    // "unknown_user": dm to nobody
  kTooManyRooms,   // "too_many_rooms"
  kRejected,       // "rejected": vetoed by the embedding application
  kRoomLimit,      // "room_limit": the join would create a room past --max-rooms or --max-rooms-per-ip
  kUnavailable,    // "unavailable": the message store failed or its queue is full; nothing was stored
  kResumeFailed,   // "resume_failed": hello's resume token is unknown, forged or past the resume window
  kAway,           // "away": dm to a user whose connection dropped and whose session is held for resume
};

// The wire string for `error` ("bad_json", ...).
std::string_view chat_error_code(ChatError error);

// A parsed client message. Views point into the parser's storage: valid until the next parse
// with the same ChatParser.
struct ClientMessage {
  ClientType type = ClientType::kPing;
  std::string_view name;   // hello
  std::string_view resume; // hello: the resume token of an earlier welcome (empty: none)
  std::string_view room;   // join, leave, msg, typing, who, history
  std::string_view text;   // msg, dm
  std::string_view to;     // dm
  std::string_view with;   // history of a direct-message conversation (instead of room)
  std::string_view id;     // optional client id echoed in ack/error (msg, dm; any type may carry it)
  bool on = false;         // typing
  uint64_t before_seq = 0; // history: only messages with seq < before_seq; 0 = latest
  uint32_t limit = 0;      // history, who: at most this many; 0 = server default
  std::string_view after;  // who: only users whose name sorts after this one (a page cursor)
  bool has_since_seq = false;  // join: since_seq was given (recovery)
  uint64_t since_seq = 0;      // join: send every message after this seq
};

struct ParseResult {
  ChatError error = ChatError::kNone;
  std::string_view reason;  // human-readable detail for the error message
  std::string_view id;      // the "id" field if one could be read, for the error reply
};

// Parses client messages. Keeps simdjson's parser and a padded copy buffer between calls so
// parsing does not allocate in the steady state.
class ChatParser {
 public:
  ChatParser();
  ~ChatParser();
  ChatParser(const ChatParser&) = delete;
  ChatParser& operator=(const ChatParser&) = delete;

  // Parses one message and validates field types and syntax (names, room names, text length
  // against max_text_bytes). Business rules (taken names, membership) are not checked here.
  ParseResult parse(std::string_view json, size_t max_text_bytes, ClientMessage& out);

 private:
  struct Impl;
  Impl* impl_;
};

// True when `name` is a valid user name: 1-32 of [A-Za-z0-9_.-].
bool is_valid_user_name(std::string_view name);
// True when `room` is a valid room name: 1-64 of [A-Za-z0-9_.-], optionally after one '#'.
bool is_valid_room_name(std::string_view room);

// Appends `text` as a JSON string literal (quotes included), escaping per RFC 8259 7
// (quote, backslash, control characters; "</" as "<\/" so pages can embed it safely).
void append_json_string(std::string& out, std::string_view text);

// Server messages, appended to `out` as one JSON object each (no trailing newline).
// `max_text_bytes` != 0 adds "max_text": the text limit in UTF-8 bytes, for clients to check
// before sending.
void write_welcome(std::string& out, std::string_view name, uint64_t max_text_bytes = 0);
void write_presence(std::string& out, bool joined, std::string_view room, std::string_view user);  // joined/left
void write_msg(std::string& out, std::string_view room, std::string_view from, std::string_view text,
               uint64_t ts_ms, uint64_t seq);
// `seq` (the conversation's, issue 14) is written when non-zero.
void write_dm(std::string& out, std::string_view from, std::string_view to, std::string_view text, uint64_t ts_ms,
              uint64_t seq = 0);
void write_typing(std::string& out, std::string_view room, std::string_view user, bool on);
void write_ack(std::string& out, std::string_view id, uint64_t seq, uint64_t ts_ms);
void write_error(std::string& out, ChatError error, std::string_view reason, std::string_view id);
void write_pong(std::string& out, uint64_t ts_ms);
// {"type":"who","room":...,"users":[...]}: users given as a callback-free range of views.
void write_who_begin(std::string& out, std::string_view room);
void write_who_user(std::string& out, std::string_view user, bool first);
void write_who_end(std::string& out);
// {"type":"history","room":...,"messages":[ msg objects ]}.
void write_history_begin(std::string& out, std::string_view room);
void write_history_item(std::string& out, std::string_view from, std::string_view text, uint64_t ts_ms,
                        uint64_t seq, bool first);
void write_history_end(std::string& out);
// {"type":"history","with":...,"messages":[: a direct-message conversation's history (items
// and end as for a room).
void write_history_begin_dm(std::string& out, std::string_view with);
// Ends a recovery reply (join with since_seq): `],"recovered":true}`, or when not every missed
// message could be sent `],"recovered":false,"first_seq":N}` with the first seq sent (or the next
// seq when none was).
void write_history_end_recovery(std::string& out, bool recovered, uint64_t first_seq);

// Batched presence and paged who (issue 18, chat_codec_presence.cpp).
// The presence changes of one room over one batch, by name.
struct MembersNames {
  std::span<const std::string_view> joined, left, away, back;
};
// {"type":"members","room":...,"joined":[...],"left":[...],"count":N}, plus "away":[...] and
// "back":[...] when not empty (members held for resume, and those who resumed): the changes of
// one room over one batch, names listed; `count` is the room's members after them.
void write_members(std::string& out, std::string_view room, const MembersNames& names, uint64_t count);
// The same, counted.
struct MembersCounts {
  uint64_t joined = 0, left = 0, away = 0, back = 0;
};
// {"type":"members","room":...,"joined_count":J,"left_count":L,"count":N}, plus "away_count" and
// "back_count" when not 0: the compact form, for rooms too big for names.
void write_members_counts(std::string& out, std::string_view room, const MembersCounts& counts, uint64_t count);
// Ends a paged who reply (after write_who_begin and its users): `],"count":N,"next":"name"}` with
// the room's total members and, when more follow, the cursor for the next page (`next` empty:
// this was the last page, and no "next" is written).
void write_who_end_paged(std::string& out, uint64_t count, std::string_view next);

// Session resume (issue 14, chat_codec_resume.cpp).
// {"type":"welcome","name":...,"max_text":N,"resume":TOKEN}: a welcome carrying the token a
// reconnecting client presents in hello; `max_text_bytes` 0 omits max_text.
void write_welcome_resume(std::string& out, std::string_view name, uint64_t max_text_bytes, std::string_view token);
// Ends a resumed welcome: appends `,"resumed":true,"rooms":[` ... `]}` after
// write_welcome_resume's output minus its closing brace; call begin, one item per room, end.
void write_resumed_begin(std::string& out);
void write_resumed_room(std::string& out, std::string_view room, bool first);
void write_resumed_end(std::string& out);
// {"type":"presence","room":...,"user":...,"status":"away"|"back"}: a member's connection
// dropped and its session is held for resume (away), or it resumed (back).
void write_away(std::string& out, std::string_view room, std::string_view user, bool away);

}  // namespace chat
