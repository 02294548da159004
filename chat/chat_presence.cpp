#include "chat/chat_app.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "chat/chat_app_internal.h"
#include "protocol/close_code.h"

// ChatApp's side of presence across nodes (issue 15, chat/cluster/presence.h): hello waits for
// the cluster-wide name claim, other nodes' joined/left/typing reach this node's members, and
// `who` adds the other nodes' members. Without a Presence none of this runs.
//
// Resume across nodes: a hello with a resume token this node does not know asks Redis whether
// another node holds that session for resume (take_over); if so the name moves here, the welcome
// says resumed, and the old node ends its copy (on_name_lost). Verified identities take over a
// held session of their name the same way, without a token.
//
// Presence in big rooms (issue 18): joins and leaves of a room over presence_batch_above members
// are batched per room for presence_batch_ms (the loop's timer wheel, not the end of the loop
// iteration: a ramp of joins spreads over many iterations, each with one join or two, so only a
// time window bounds the events per room) and told as one `members` event; and `who` is paged.
// Order: broadcast() tells a room's pending batch before any other event of that room, so a
// member never sees a user's message, typing or away before that user's join.

namespace chat {

using detail::fd_of;

void ChatApp::set_presence(Presence* presence) {
  presence_ = presence;
  if (presence_ != nullptr) presence_->set_client(this);
}

bool ChatApp::new_claim_cookie(protocol::ConnectionId id, std::string_view message_id, uint64_t& cookie) {
  uint32_t fd = fd_of(id);
  if (PendingClaim* pending = pending_claims_.find(fd); pending != nullptr && pending->connection == id) {
    send_error(id, ChatError::kRejected, "a hello is already waiting for its answer", message_id);
    return false;
  }
  // The fd in the low half finds the entry; the counter tells a stale answer (the connection
  // closed and its fd was reused) from the current one.
  cookie = (next_presence_cookie_++ << 32) | fd;
  return true;
}

bool ChatApp::answered_claim(uint64_t cookie, std::string_view name, ClaimResult result, PendingClaim& out) {
  PendingClaim* found = pending_claims_.find(static_cast<uint32_t>(cookie));
  if (found == nullptr || found->cookie != cookie) {
    // The connection went before the answer: a name won for nobody is given back.
    if (result == ClaimResult::kOk && !users_.contains(name)) presence_->release(name);
    return false;
  }
  out = std::move(*found);
  pending_claims_.erase(static_cast<uint32_t>(cookie));
  return true;
}

void ChatApp::claim_name(protocol::ConnectionId id, const ClientMessage& message) {
  uint64_t cookie = 0;
  if (!new_claim_cookie(id, message.id, cookie)) return;
  uint32_t fd = fd_of(id);
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

void ChatApp::take_over_name(protocol::ConnectionId id, const ClientMessage& message) {
  uint64_t cookie = 0;
  if (!new_claim_cookie(id, message.id, cookie)) return;
  uint32_t fd = fd_of(id);
  if (!presence_->take_over(message.name, message.resume, cookie)) {
    ++stats_.unavailable;
    send_error(id, ChatError::kUnavailable,
               "sessions are resumed across the cluster and it cannot answer now; say hello again later",
               message.id);
    return;
  }
  pending_claims_.insert_or_assign(fd, PendingClaim{cookie, id, std::string(message.name), std::string(message.id)});
}

void ChatApp::on_taken_over(uint64_t cookie, std::string_view name, ClaimResult result,
                            const std::vector<std::string>& rooms) {
  PendingClaim pending;
  if (!answered_claim(cookie, name, result, pending)) return;
  protocol::ConnectionId id = pending.connection;
  if (pending.verified) {
    // A verified identity whose name another node holds: taken over when that node only held
    // it for resume; a live session there keeps it (as on one node: 409 at the upgrade). Its
    // welcome went at open; the client rejoins its rooms as after any reconnect.
    if (result == ClaimResult::kUnavailable) presence_->adopt(pending.name);
    if (result == ClaimResult::kTaken) refuse_verified_name(id);
    return;
  }
  switch (result) {
    case ClaimResult::kOk:
      // Rooms are not joined here: the client joins each with since_seq, as after any resume.
      if (!identify(id, pending.name, &rooms)) {
        if (!users_.contains(pending.name)) presence_->release(pending.name);
        send_error(id, ChatError::kNameTaken, "user name taken", pending.message_id);
      }
      return;
    case ClaimResult::kTaken:
      send_resume_failed(id, pending.message_id);
      return;
    case ClaimResult::kUnavailable:
      ++stats_.unavailable;
      send_error(id, ChatError::kUnavailable,
                 "sessions are resumed across the cluster and it cannot answer now; say hello again later",
                 pending.message_id);
      return;
  }
}

void ChatApp::refuse_verified_name(protocol::ConnectionId id) {
  // As on_open does when the name is taken on this node.
  send_error(id, ChatError::kNameTaken, "user name taken (on another server of this chat)", {});
  transport_.close(id, protocol::kClosePolicyViolation, "user name taken");
}

void ChatApp::on_name_lost(std::string_view name) {
  const uint32_t* found = users_.find(name);
  if (found == nullptr) return;
  uint32_t index = *found;
  ChatSession& session = sessions_.get(index);
  if (session.connection != 0) {
    // Still attached here (a reloaded page whose old socket is not seen closed yet): the new
    // connection on the other node has the session, as resume_by_token does on one node.
    protocol::ConnectionId old = session.connection;
    detach_session(index);
    transport_.close(old, protocol::kClosePolicyViolation, "session resumed on another server");
  }
  end_session(index);  // its rooms are told `left`; the other node's rejoins tell `joined`
}

void ChatApp::on_claimed(uint64_t cookie, std::string_view name, ClaimResult result) {
  PendingClaim pending;
  if (!answered_claim(cookie, name, result, pending)) return;
  protocol::ConnectionId id = pending.connection;
  if (pending.verified) {
    if (result == ClaimResult::kUnavailable) presence_->adopt(pending.name);
    if (result == ClaimResult::kTaken) {
      // Another node holds it: taken over if only held for resume there (on_taken_over), else
      // refused as on_open does when the name is taken on this node.
      uint64_t again = (next_presence_cookie_++ << 32) | static_cast<uint32_t>(cookie);
      pending.cookie = again;
      if (presence_->take_over(pending.name, {}, again)) {
        pending_claims_.insert_or_assign(static_cast<uint32_t>(cookie), std::move(pending));
        return;
      }
      refuse_verified_name(id);
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
  Room& local = rooms_.room(room_id);
  switch (event) {
    // 0: every attached member (held ones have connection 0). The size (the room's members
    // on every node, the one joining or leaving included) picks the small- or big-room form.
    case PresenceEvent::kJoined:
      local.set_remote_members(local.remote_members() + 1);
      announce_presence(local, room_id, user, true, 0, local.size());
      return;
    case PresenceEvent::kLeft:
      announce_presence(local, room_id, user, false, 0, local.size());
      if (local.remote_members() > 0) local.set_remote_members(local.remote_members() - 1);
      return;
    case PresenceEvent::kTypingOn:
    case PresenceEvent::kTypingOff:
      out_.clear();
      write_typing(out_, local.name(), user, event == PresenceEvent::kTypingOn);
      broadcast(local, 0, out_);
      return;
  }
}

void ChatApp::on_room_count(std::string_view room, size_t members) {
  uint32_t room_id = rooms_.find(room);
  if (room_id == kNoIndex) return;
  // Redis counted this node's members as of its last batch; those since (a join or leave not
  // yet sent) make the figure off by at most one batch, set right by the next count.
  Room& local = rooms_.room(room_id);
  local.set_remote_members(members > local.size() ? members - local.size() : 0);
}

void ChatApp::set_loop_clock(reactor::EventLoop* loop) {
  loop_clock_ = loop;
  if (loop == nullptr || config_.presence_batch_ms == 0 || presence_wheel_ != nullptr) return;
  // 10 ms ticks: a batch waits presence_batch_ms, at most one tick more.
  presence_wheel_ = std::make_unique<reactor::TimerWheel>(loop->now_ms(), &ChatApp::on_presence_tick, this, 10);
  loop->add_timer_wheel(presence_wheel_.get());
}

void ChatApp::on_presence_tick(void* context, reactor::TimerNode*) {
  static_cast<ChatApp*>(context)->flush_presence(false);
}

void ChatApp::announce_presence(const Room& room, uint32_t room_id, std::string_view user, bool joined,
                                protocol::ConnectionId except, size_t size) {
  if (presence_wheel_ == nullptr || size + room.remote_members() <= config_.presence_batch_above) {
    // One event per change, as before issue 18 (broadcast tells a pending batch first).
    out_.clear();
    write_presence(out_, joined, room.name(), user);
    broadcast(room, except, out_);
    return;
  }
  batch_presence(room, room_id, user, joined ? PresenceChange::kJoined : PresenceChange::kLeft);
}

void ChatApp::announce_status(const Room& room, uint32_t room_id, std::string_view user, bool away,
                              protocol::ConnectionId except) {
  // The held member still counts in the room's size. Batched like joins: a big room whose
  // members drop together (a proxy restarting, a network blip) would otherwise cost O(N^2).
  if (presence_wheel_ == nullptr || room.cluster_size() <= config_.presence_batch_above) {
    out_.clear();
    write_away(out_, room.name(), user, away);
    broadcast(room, except, out_);
    return;
  }
  batch_presence(room, room_id, user, away ? PresenceChange::kAway : PresenceChange::kBack);
}

void ChatApp::batch_presence(const Room& room, uint32_t room_id, std::string_view user, PresenceChange kind) {
  std::unique_ptr<PresenceBatch>& batch = room.pending_presence();
  if (batch == nullptr) {
    batch = std::make_unique<PresenceBatch>();
    batch->since_ms = loop_ms();
    presence_rooms_.push_back(room_id);
  }
  batch->note(user, kind);
  if (!presence_tick_.armed()) presence_wheel_->schedule(&presence_tick_, config_.presence_batch_ms);
}

void ChatApp::flush_presence(bool all) {
  if (presence_wheel_ != nullptr) presence_wheel_->cancel(&presence_tick_);
  // Swapped out: a room not yet due goes back into presence_rooms_.
  std::vector<uint32_t> rooms;
  rooms.swap(presence_rooms_);
  uint64_t now = loop_ms();
  for (uint32_t room_id : rooms) {
    // A stale id (the room was freed, maybe reused) has no batch or a batch of its own.
    if (room_id >= rooms_.slab_size() || !rooms_.room(room_id).live()) continue;
    const Room& room = rooms_.room(room_id);
    const PresenceBatch* batch = room.pending_presence().get();
    if (batch == nullptr) continue;
    size_t members = room.cluster_size();
    if (!all && members > config_.presence_names_max &&
        now - batch->since_ms < counts_interval_ms(members, config_.presence_counts_ms, config_.presence_counts_per_s)) {
      presence_rooms_.push_back(room_id);
      continue;
    }
    flush_room_presence(room);
  }
  if (!presence_rooms_.empty() && presence_wheel_ != nullptr) {
    presence_wheel_->schedule(&presence_tick_, config_.presence_batch_ms);
  }
}

void ChatApp::flush_room_presence(const Room& room) {
  std::unique_ptr<PresenceBatch> batch = std::move(room.pending_presence());
  if (batch == nullptr || batch->size() == 0) return;
  presence_out_.clear();
  // Names only while the event stays small: a room or a batch past presence_names_max would
  // make every member read (and the server copy to each) thousands of names per batch.
  size_t members = room.cluster_size();
  if (members <= config_.presence_names_max && batch->size() <= config_.presence_names_max) {
    for (std::vector<std::string_view>& names : presence_names_) names.clear();
    for (const PresenceBatch::Change& change : batch->changes) {
      if (!change.cancelled) presence_names_[static_cast<size_t>(change.kind)].push_back(change.user);
    }
    auto names = [this](PresenceChange kind) -> std::span<const std::string_view> {
      return presence_names_[static_cast<size_t>(kind)];
    };
    write_members(presence_out_, room.name(),
                  {names(PresenceChange::kJoined), names(PresenceChange::kLeft), names(PresenceChange::kAway),
                   names(PresenceChange::kBack)},
                  members);
  } else {
    write_members_counts(presence_out_, room.name(),
                         {batch->count(PresenceChange::kJoined), batch->count(PresenceChange::kLeft),
                          batch->count(PresenceChange::kAway), batch->count(PresenceChange::kBack)},
                         members);
  }
  broadcast(room, 0, presence_out_);
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
  send_who(pending.connection, room_id, ok ? remote : kNone, pending.limit, pending.after);
}

void ChatApp::send_who(protocol::ConnectionId id, uint32_t room_id, const std::vector<std::string>& remote,
                       uint32_t limit, std::string_view after) {
  const Room& room = rooms_.room(room_id);
  // The list answers as of now: what is still batched is told first, so a client that applies
  // `members` events to this list stays right (docs/protocol.md "Presence in big rooms").
  flush_room_presence(room);
  std::vector<std::string_view> names;
  names.reserve(room.size() + remote.size());
  for (const RoomMember& member : room.members()) names.push_back(sessions_.get(member.session).name());
  for (const std::string& user : remote) {
    // A name is one node's at a time; a stale entry of a user who moved here is not repeated.
    if (users_.contains(user) && joined_room(*users_.find(user), room.name()) != kNoIndex) continue;
    names.push_back(user);
  }
  out_.clear();
  write_who_begin(out_, room.name());
  bool paged = limit != 0 || !after.empty() || names.size() > kWhoPage;
  if (!paged) {
    for (size_t i = 0; i < names.size(); ++i) write_who_user(out_, names[i], i == 0);
    write_who_end(out_);
    transport_.send_text(id, out_);
    return;
  }
  // A page: the `limit` smallest names after the cursor, in byte order (names are unique
  // ignoring case, so the order is total and the cursor stable across joins and leaves).
  // O(members) per page: nth_element, then a sort of the page only.
  size_t total = names.size();
  size_t page = limit == 0 ? kWhoPage : limit;
  auto rest = std::partition(names.begin(), names.end(), [after](std::string_view name) { return name > after; });
  size_t candidates = static_cast<size_t>(rest - names.begin());
  bool more = candidates > page;
  auto end = names.begin() + static_cast<std::ptrdiff_t>(more ? page : candidates);
  if (more) std::nth_element(names.begin(), end, rest);
  std::sort(names.begin(), end);
  for (auto it = names.begin(); it != end; ++it) write_who_user(out_, *it, it == names.begin());
  write_who_end_paged(out_, total, more ? *(end - 1) : std::string_view());
  transport_.send_text(id, out_);
}

}  // namespace chat
