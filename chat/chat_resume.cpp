#include <openssl/crypto.h>
#include <sys/random.h>
#include <xxhash.h>

#include <algorithm>
#include <string>

#include "chat/chat_app.h"
#include "chat/chat_app_internal.h"
#include "protocol/close_code.h"

// Session resume (issue 14, docs/protocol.md "Session resume"). When a connection of an
// identified session drops and ChatConfig::resume_window_ms is on, the session is held instead
// of ended: its name stays taken (nobody else can say hello as it or receive its DMs), it stays
// a member of its rooms with fan-out paused (RoomMember::connection 0), and the rooms see it
// "away". A hello carrying the resume token of its last welcome within the window attaches a
// new connection to it; the client then joins each room with since_seq, which answers what it
// missed and resumes fan-out at the same point (the seam rules of chat_log.cpp), so nothing is
// missed or repeated. Past the window, the session ends with the usual `left`.
//
// The token is the session's pool index (8 hex digits) and 96 random bits (24 hex digits) kept
// in the session; it is replaced on every welcome. No token table: memory is one session per
// held user (and its deadline), bounded by ChatConfig::max_held_sessions. With a durable log, a
// room whose members are all held drops its ring (drop_ring_if_unattended): held sessions do not
// pin history memory.

namespace chat {

using detail::fd_of;

namespace {

constexpr size_t kIndexHexDigits = 8;
constexpr size_t kSecretBytes = sizeof(ChatSession{}.resume_secret);
constexpr size_t kTokenLength = kIndexHexDigits + 2 * kSecretBytes;
constexpr char kHex[] = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool all_zero(const uint8_t* bytes, size_t size) {
  return std::all_of(bytes, bytes + size, [](uint8_t b) { return b == 0; });
}

// Parses a token into its session index and secret; false when it is not one of ours in shape.
bool parse_token(std::string_view token, uint32_t& index, uint8_t (&secret)[kSecretBytes]) {
  if (token.size() != kTokenLength) return false;
  index = 0;
  for (size_t i = 0; i < kIndexHexDigits; ++i) {
    int v = hex_value(token[i]);
    if (v < 0) return false;
    index = index << 4 | static_cast<uint32_t>(v);
  }
  for (size_t i = 0; i < kSecretBytes; ++i) {
    int high = hex_value(token[kIndexHexDigits + 2 * i]);
    int low = hex_value(token[kIndexHexDigits + 2 * i + 1]);
    if (high < 0 || low < 0) return false;
    secret[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return true;
}

}  // namespace

uint64_t FoldedNameHash::operator()(std::string_view name) const noexcept {
  if (name.size() > kMaxUserName) return XXH3_64bits(name.data(), name.size());
  char folded[kMaxUserName];
  for (size_t i = 0; i < name.size(); ++i) folded[i] = FoldedNameEqual::fold_ascii(name[i]);
  return XXH3_64bits(folded, name.size());
}

void ChatApp::write_session_welcome(uint32_t index) {
  ChatSession& session = sessions_.get(index);
  out_.clear();
  // getrandom(2) of 16 bytes from an initialised pool does not fail or block; if it did, the
  // welcome carries no token (an all-zero secret never matches) rather than a guessable one.
  if (config_.resume_window_ms == 0 ||
      getrandom(session.resume_secret, kSecretBytes, 0) != static_cast<ssize_t>(kSecretBytes)) {
    std::fill(std::begin(session.resume_secret), std::end(session.resume_secret), 0);
    write_welcome(out_, session.name(), config_.max_text_bytes);
    return;
  }
  write_welcome_resume(out_, session.name(), config_.max_text_bytes, resume_token(index));
}

std::string ChatApp::resume_token(uint32_t index) const {
  const ChatSession& session = sessions_.get(index);
  if (all_zero(session.resume_secret, kSecretBytes)) return {};
  std::string token(kTokenLength, '0');
  for (size_t i = 0; i < kIndexHexDigits; ++i) token[i] = kHex[(index >> (4 * (kIndexHexDigits - 1 - i))) & 0xf];
  for (size_t i = 0; i < kSecretBytes; ++i) {
    token[kIndexHexDigits + 2 * i] = kHex[session.resume_secret[i] >> 4];
    token[kIndexHexDigits + 2 * i + 1] = kHex[session.resume_secret[i] & 0xf];
  }
  return token;
}

void ChatApp::detach_session(uint32_t index) {
  ChatSession& session = sessions_.get(index);
  for (const Membership& membership : session.memberships) {
    rooms_.set_member_connection(membership.room, membership.slot, 0);
  }
  uint32_t fd = fd_of(session.connection);
  if (session.connection != 0 && fd < session_by_fd_.size() && session_by_fd_[fd] == index + 1) {
    session_by_fd_[fd] = 0;
  }
  session.connection = 0;
}

bool ChatApp::hold_session(uint32_t index) {
  if (config_.resume_window_ms == 0) return false;
  if (config_.max_held_sessions != 0 && held_until_.size() >= config_.max_held_sessions) {
    // Over the bound: the oldest held session ends now instead of at its deadline.
    while (!held_.empty()) {
      HeldSession oldest = held_.front();
      held_.pop_front();
      const uint64_t* until = held_until_.find(oldest.session);
      if (until != nullptr && *until == oldest.until) {
        end_session(oldest.session);
        break;
      }
    }
  }
  detach_session(index);
  uint64_t until = monotonic_now() + config_.resume_window_ms;
  held_until_.insert_or_assign(index, until);
  held_.push_back({index, until});
  ChatSession& session = sessions_.get(index);
  for (const Membership& membership : session.memberships) {
    announce_status(rooms_.room(membership.room), membership.room, session.name(), true, 0);
    drop_ring_if_unattended(membership.room);
  }
  if (presence_ != nullptr) {
    // The reconnect may land on another node of the chat: it takes the session over there with
    // this token (the rooms go along for its welcome).
    presence_->hold(session.name(), resume_token(index), grants_.contains(index), rooms_of(session.name()),
                    config_.resume_window_ms);
  }
  return true;
}

void ChatApp::drop_ring_if_unattended(uint32_t room_id) {
  if (memory_only_) return;  // there the ring is the history
  // A bounded look (the ring is only a cache): a big room where everyone dropped keeps its ring
  // for the window, under --history-memory like any other.
  constexpr size_t kMaxScan = 64;
  std::span<const RoomMember> members = rooms_.room(room_id).members();
  if (members.size() > kMaxScan) return;
  for (const RoomMember& member : members) {
    if (member.connection != 0) return;
  }
  if (!rooms_.room(room_id).history().empty()) rooms_.reset_history(room_id, false);
}

void ChatApp::attach_session(uint32_t index, protocol::ConnectionId id) {
  ChatSession& session = sessions_.get(index);
  bool was_held = held_until_.erase(index);  // its entry in held_ is now stale and skipped
  session.connection = id;
  uint32_t fd = fd_of(id);
  if (fd >= session_by_fd_.size()) session_by_fd_.resize(std::max<size_t>(fd + 1, session_by_fd_.size() * 2), 0);
  session_by_fd_[fd] = index + 1;
  write_session_welcome(index);
  write_resumed_begin(out_);
  bool first = true;
  for (const Membership& membership : session.memberships) {
    write_resumed_room(out_, rooms_.room(membership.room).name(), first);
    first = false;
  }
  write_resumed_end(out_);
  transport_.send_text(id, out_);
  if (!was_held) return;
  if (presence_ != nullptr) presence_->unhold(session.name());
  for (const Membership& membership : session.memberships) {
    announce_status(rooms_.room(membership.room), membership.room, session.name(), false, id);
  }
}

void ChatApp::resume_by_token(protocol::ConnectionId id, const ClientMessage& message) {
  expire_held();
  uint32_t index = 0;
  uint8_t secret[kSecretBytes];
  bool valid = parse_token(message.resume, index, secret) && index < sessions_.capacity() &&
               sessions_.get(index).in_use() && !all_zero(sessions_.get(index).resume_secret, kSecretBytes) &&
               CRYPTO_memcmp(secret, sessions_.get(index).resume_secret, kSecretBytes) == 0 &&
               FoldedNameEqual{}(sessions_.get(index).name(), message.name);
  if (!valid && presence_ != nullptr && !users_.contains(message.name)) {
    // Not a session of this node: perhaps one held on another node of the chat.
    take_over_name(id, message);
    return;
  }
  if (!valid) {
    send_resume_failed(id, message.id);
    return;
  }
  ChatSession& session = sessions_.get(index);
  if (session.connection != 0) {
    // The old connection is still attached (its drop not noticed yet, e.g. a reloaded page):
    // the token holder takes the session over and the old connection is closed.
    protocol::ConnectionId old = session.connection;
    detach_session(index);
    transport_.close(old, protocol::kClosePolicyViolation, "session resumed on another connection");
  }
  attach_session(index, id);
}

void ChatApp::send_resume_failed(protocol::ConnectionId id, std::string_view message_id) {
  send_error(id, ChatError::kResumeFailed,
             "resume token unknown, forged or expired (the window is " +
                 std::to_string(config_.resume_window_ms / 1000) + " s); say hello without it",
             message_id);
}

void ChatApp::unpause_membership(uint32_t index, uint32_t room_id) {
  const ChatSession& session = sessions_.get(index);
  uint32_t i = session.memberships.find(room_id);
  if (i == kNoIndex || session.connection == 0) return;
  uint32_t slot = session.memberships[i].slot;
  if (rooms_.room(room_id).members()[slot].connection == 0) {
    rooms_.set_member_connection(room_id, slot, session.connection);
  }
}

uint32_t ChatApp::held_session_named(std::string_view name) const {
  const uint32_t* index = users_.find(name);
  if (index == nullptr) return kNoIndex;
  return held_until_.contains(*index) ? *index : kNoIndex;
}

size_t ChatApp::expire_held() {
  if (held_.empty()) return 0;
  uint64_t now = monotonic_now();
  size_t ended = 0;
  while (!held_.empty() && held_.front().until <= now) {
    HeldSession entry = held_.front();
    held_.pop_front();
    const uint64_t* until = held_until_.find(entry.session);
    if (until == nullptr || *until != entry.until) continue;  // resumed or ended meanwhile
    end_session(entry.session);
    ++ended;
  }
  // Sessions that resume and drop again leave stale entries: drop them once they dominate.
  if (held_.size() > 2 * held_until_.size() + 64) {
    std::erase_if(held_, [this](const HeldSession& entry) {
      const uint64_t* until = held_until_.find(entry.session);
      return until == nullptr || *until != entry.until;
    });
  }
  return ended;
}

}  // namespace chat
