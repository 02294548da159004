#include "chat/chat_app.h"

#include "chat/chat_app_internal.h"
#include "protocol/close_code.h"

// ChatApp's side of presence across nodes (issue 15, chat/cluster/presence.h): hello waits for
// the cluster-wide name claim, other nodes' joined/left/typing reach this node's members, and
// `who` adds the other nodes' members. Without a Presence none of this runs.

namespace chat {

using detail::fd_of;

void ChatApp::set_presence(Presence* presence) {
  presence_ = presence;
  if (presence_ != nullptr) presence_->set_client(this);
}

void ChatApp::claim_name(protocol::ConnectionId id, const ClientMessage& message) {
  uint32_t fd = fd_of(id);
  if (PendingClaim* pending = pending_claims_.find(fd); pending != nullptr && pending->connection == id) {
    send_error(id, ChatError::kRejected, "a hello is already waiting for its answer", message.id);
    return;
  }
  // The fd in the low half finds the entry; the counter tells a stale answer (the connection
  // closed and its fd was reused) from the current one.
  uint64_t cookie = (next_presence_cookie_++ << 32) | fd;
  if (!presence_->claim(message.name, cookie)) {
    ++stats_.unavailable;
    send_error(id, ChatError::kUnavailable,
               "user names are checked across the cluster and it cannot answer now; say hello again later",
               message.id);
    return;
  }
  pending_claims_.insert_or_assign(fd, PendingClaim{cookie, id, std::string(message.name), std::string(message.id)});
}

void ChatApp::claim_verified(protocol::ConnectionId id, std::string_view name) {
  uint64_t cookie = (next_presence_cookie_++ << 32) | fd_of(id);
  if (!presence_->claim(name, cookie)) {
    presence_->adopt(name);  // Redis away: kept, and claimed when it returns
    return;
  }
  pending_claims_.insert_or_assign(fd_of(id), PendingClaim{cookie, id, std::string(name), {}, true});
}

void ChatApp::on_claimed(uint64_t cookie, std::string_view name, ClaimResult result) {
  PendingClaim* found = pending_claims_.find(static_cast<uint32_t>(cookie));
  if (found == nullptr || found->cookie != cookie) {
    // The connection went before the answer: a name claimed for nobody is given back.
    if (result == ClaimResult::kOk && !users_.contains(name)) presence_->release(name);
    return;
  }
  PendingClaim pending = std::move(*found);
  pending_claims_.erase(static_cast<uint32_t>(cookie));
  protocol::ConnectionId id = pending.connection;
  if (pending.verified) {
    if (result == ClaimResult::kUnavailable) presence_->adopt(pending.name);
    if (result == ClaimResult::kTaken) {
      // As on_open does when the name is taken on this node.
      send_error(id, ChatError::kNameTaken, "user name taken (on another server of this chat)", {});
      transport_.close(id, protocol::kClosePolicyViolation, "user name taken");
    }
    return;
  }
  switch (result) {
    case ClaimResult::kOk:
      // Still false when a hello on this node took the name meanwhile (both claims succeed:
      // the claim is the node's), or the session pool is full.
      if (!identify(id, pending.name)) {
        if (!users_.contains(pending.name)) presence_->release(pending.name);  // pool full: held for nobody
        send_error(id, ChatError::kNameTaken,
                   held_session_named(pending.name) != kNoIndex
                       ? "user name taken: held for its owner to resume (reconnecting)"
                       : "user name taken",
                   pending.message_id);
      }
      return;
    case ClaimResult::kTaken:
      send_error(id, ChatError::kNameTaken, "user name taken (on another server of this chat)", pending.message_id);
      return;
    case ClaimResult::kUnavailable:
      ++stats_.unavailable;
      send_error(id, ChatError::kUnavailable,
                 "user names are checked across the cluster and it cannot answer now; say hello again later",
                 pending.message_id);
      return;
  }
}

void ChatApp::on_remote_presence(std::string_view room, std::string_view user, PresenceEvent event) {
  uint32_t room_id = rooms_.find(room);
  if (room_id == kNoIndex) return;
  const Room& local = rooms_.room(room_id);
  out_.clear();
  switch (event) {
    case PresenceEvent::kJoined:
    case PresenceEvent::kLeft:
      write_presence(out_, event == PresenceEvent::kJoined, local.name(), user);
      break;
    case PresenceEvent::kTypingOn:
    case PresenceEvent::kTypingOff:
      write_typing(out_, local.name(), user, event == PresenceEvent::kTypingOn);
      break;
  }
  broadcast(local, 0, out_);  // 0: every attached member (held ones have connection 0)
}

void ChatApp::on_members(uint64_t cookie, bool ok, const std::vector<std::string>& remote) {
  PendingWho* found = pending_whos_.find(cookie);
  if (found == nullptr) return;
  PendingWho pending = std::move(*found);
  pending_whos_.erase(cookie);
  // The asker may have gone, or left the room, while Redis answered.
  uint32_t session = session_of(pending.connection);
  if (session == kNoIndex || sessions_.get(session).connection != pending.connection) return;
  uint32_t room_id = joined_room(session, pending.room);
  if (room_id == kNoIndex) return;
  static const std::vector<std::string> kNone;
  send_who(pending.connection, room_id, ok ? remote : kNone);
}

void ChatApp::send_who(protocol::ConnectionId id, uint32_t room_id, const std::vector<std::string>& remote) {
  const Room& room = rooms_.room(room_id);
  out_.clear();
  write_who_begin(out_, room.name());
  bool first = true;
  for (const RoomMember& member : room.members()) {
    write_who_user(out_, sessions_.get(member.session).name(), first);
    first = false;
  }
  for (const std::string& user : remote) {
    // A name is one node's at a time; a stale entry of a user who moved here is not repeated.
    if (users_.contains(user) && joined_room(*users_.find(user), room.name()) != kNoIndex) continue;
    write_who_user(out_, user, first);
    first = false;
  }
  write_who_end(out_);
  transport_.send_text(id, out_);
}

}  // namespace chat
