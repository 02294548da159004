#include <algorithm>
#include <string>

#include "chat/chat_app.h"

// ChatApp and its room log (issue 14, chat/store/room_log.h): messages are submitted to the log
// and delivered on completion; joins, recoveries (join with since_seq) and history requests are
// answered from a room's ring when it holds what is asked, else from a read of the log.
//
// Order: the log completes appends in submission order, and each conversation's seqs in that
// order, so delivering on completion hands members every message in seq order. A read holds
// exactly the messages whose completions were delivered before it (room_log.h), so a joiner
// added to the room when its read completes sees each message once: in the read's reply, or
// live after it.

namespace chat {

namespace {

constexpr std::string_view kDmPrefix = "dm:";

}  // namespace

bool ChatApp::submit_append(AppendRequest request, protocol::ConnectionId id, std::string_view message_id) {
  if (log_->append(std::move(request)) == Submit::kAccepted) return true;
  // The log's queue is full (the disk is slower than the input): refuse rather than buffer.
  ++stats_.unavailable;
  if (id != 0) send_error(id, ChatError::kUnavailable, "the message store is busy; try again", message_id);
  return false;
}

void ChatApp::send_ack(protocol::ConnectionId id, std::string_view message_id, uint64_t seq, uint64_t ts_ms) {
  // The sender may be gone (closed while its message was being stored): it resends with the
  // same id after reconnecting and gets this ack then, from the log's dedup.
  if (id == 0 || session_of(id) == kNoIndex) return;
  out_.clear();
  write_ack(out_, message_id, seq, ts_ms);
  transport_.send_text(id, out_);
}

protocol::ConnectionId ChatApp::sender_connection(protocol::ConnectionId cookie, std::string_view sender) const {
  if (cookie != 0 && session_of(cookie) != kNoIndex) return cookie;
  // The sender's connection dropped while its message was being stored and the session was
  // resumed on another: the ack follows the session, and the message is not echoed to it as a
  // `msg` (names are unique, so the name finds the same user).
  const uint32_t* session = users_.find(sender);
  return session != nullptr ? sessions_.get(*session).connection : 0;
}

void ChatApp::on_appended(AppendResult& result) {
  const AppendRequest& request = result.request;
  bool dm = std::string_view(request.conversation).starts_with(kDmPrefix);
  std::string to;
  if (dm && !dm_targets_.empty()) {
    to = std::move(dm_targets_.front());
    dm_targets_.pop_front();
  }
  protocol::ConnectionId sender = sender_connection(request.cookie, request.sender);
  switch (result.status) {
    case LogStatus::kUnavailable:
      ++stats_.unavailable;
      if (sender != 0 && session_of(sender) != kNoIndex) {
        send_error(sender, ChatError::kUnavailable, "the message store failed; the message was not stored",
                   request.client_id);
      }
      return;
    case LogStatus::kDuplicate:
      // Already stored (a resend after a lost ack): the original ack, nothing delivered again.
      ++stats_.duplicates;
      send_ack(sender, request.client_id, result.seq, result.ts_ms);
      return;
    case LogStatus::kOk:
      break;
  }
  // Fanned out below, in this iteration: the loop clock reads the same before and after.
  if (request.arrival_ms != 0) {
    const uint64_t now = loop_ms();
    publish_to_delivery_.record(now > request.arrival_ms ? (now - request.arrival_ms) * 1000 : 0);
  }
  if (log_->delivers()) {
    // The engine hands the message to on_delivered (from this node or another): ack only.
    ++(dm ? stats_.direct_messages : stats_.messages);
    send_ack(sender, request.client_id, result.seq, result.ts_ms);
    return;
  }
  if (dm) {
    deliver_dm(request.sender, to, request.text, result.ts_ms, result.seq);
    ++stats_.direct_messages;
    // Memory only keeps no DM conversations (nothing would ever free them): each DM is seq 1.
    if (memory_only_) log_->forget(request.conversation);
  } else {
    deliver_room_message(request.conversation, request.sender, request.text, result.ts_ms, result.seq, sender);
    ++stats_.messages;
  }
  send_ack(sender, request.client_id, result.seq, result.ts_ms);
}

void ChatApp::deliver_dm(std::string_view from, std::string_view to, std::string_view text, uint64_t ts_ms,
                         uint64_t seq) {
  // A target held for resume (connection 0) finds it in DM history (when verified) instead.
  const uint32_t* target = users_.find(to);
  if (target == nullptr || sessions_.get(*target).connection == 0) return;
  out_.clear();
  write_dm(out_, from, to, text, ts_ms, seq);
  transport_.send_text(sessions_.get(*target).connection, out_);
}

void ChatApp::deliver_room_message(std::string_view conversation, std::string_view from, std::string_view text,
                                   uint64_t ts_ms, uint64_t seq, protocol::ConnectionId except) {
  // The room may have emptied (its last local member left) while the message was stored or
  // travelled: it is in the log, for later.
  uint32_t room_id = rooms_.find(conversation);
  if (room_id == kNoIndex) return;
  rooms_.append_history(room_id, from, text, ts_ms, seq);
  const Room& room = rooms_.room(room_id);
  out_.clear();
  write_msg(out_, room.name(), from, text, ts_ms, seq);
  broadcast(room, except, out_);
}

void ChatApp::on_delivered(const DeliveredMessage& message) {
  if (message.conversation.starts_with(kDmPrefix)) {
    deliver_dm(message.sender, message.recipient, message.text, message.ts_ms, message.seq);
    return;
  }
  // The sender (origin_cookie, on this node only) gets its ack instead.
  deliver_room_message(message.conversation, message.sender, message.text, message.ts_ms, message.seq,
                       message.origin_cookie != 0 ? sender_connection(message.origin_cookie, message.sender) : 0);
}

bool ChatApp::publish(std::string_view room_name, std::string_view from, std::string_view text) {
  if (rooms_.find(room_name) == kNoIndex) return false;
  AppendRequest request;
  request.conversation = room_name;
  request.sender = from;
  request.ts_ms = now_ms();
  request.text = text;
  return submit_append(std::move(request), 0, {});
}

void ChatApp::submit_read(PendingRead pending, std::string_view conversation, uint64_t bound, size_t limit,
                          bool since) {
  uint64_t cookie = next_read_++;
  protocol::ConnectionId id = pending.connection;
  // Registered before the call: the memory log completes inside it.
  pending_reads_.insert_or_assign(cookie, std::move(pending));
  Submit submit = since ? log_->since(conversation, bound, limit, cookie) : log_->history(conversation, bound, limit, cookie);
  if (submit == Submit::kAccepted) return;
  PendingRead* refused = pending_reads_.find(cookie);
  std::string message_id = refused != nullptr ? std::move(refused->message_id) : std::string();
  pending_reads_.erase(cookie);
  ++stats_.unavailable;
  send_error(id, ChatError::kUnavailable, "the message store is busy; try again", message_id);
}

void ChatApp::on_read(ReadResult& result) {
  PendingRead* found = pending_reads_.find(result.cookie);
  if (found == nullptr) return;
  PendingRead pending = std::move(*found);
  pending_reads_.erase(result.cookie);
  // The asker may have closed meanwhile (and its fd been reused: session_of checks the id).
  if (session_of(pending.connection) != pending.session) return;
  if (result.status != LogStatus::kOk) {
    ++stats_.unavailable;
    send_error(pending.connection, ChatError::kUnavailable, "the message store failed to read; try again",
               pending.message_id);
    return;
  }
  switch (pending.kind) {
    case PendingRead::Kind::kJoin:
      finish_join(pending, result);
      return;
    case PendingRead::Kind::kHistory:
      send_stored(pending.connection, pending.name, false, result.messages, false, false, 0);
      return;
    case PendingRead::Kind::kDmHistory:
      send_stored(pending.connection, pending.name, true, result.messages, false, false, 0);
      return;
  }
}

void ChatApp::finish_join(PendingRead& pending, ReadResult& result) {
  if (!room_allowed(pending.session, pending.name)) return;  // checked at submit; grants do not change
  bool created = rooms_.find(pending.name) == kNoIndex;
  RoomTable::JoinResult joined;
  if (!admit(pending.connection, pending.session, pending.name, pending.message_id, joined)) return;
  // A resumed member gets live messages from here: the read holds every earlier one.
  unpause_membership(pending.session, joined.room);
  // A delivering engine sends this room's messages after the read's last seq from now on.
  if (created) log_->watch(pending.name, result.last_seq);
  // Load the ring of a new room from the read (a contiguous run of the newest messages), or
  // refill an existing room's when a plain read found more than it holds: the read holds every
  // message delivered before it, so it can replace the ring. Complete when nothing older is in
  // the log (fewer than asked, or everything since 0).
  const History& ring = rooms_.room(joined.room).history();
  if (created || (!pending.since && ring.size() < result.messages.size())) {
    bool complete = pending.since ? pending.since_seq == 0 && result.complete
                                  : result.messages.size() < config_.history_size;
    rooms_.reset_history(joined.room, complete);
    for (const StoredMessage& message : result.messages) {
      rooms_.append_history(joined.room, message.sender, message.text, message.ts_ms, message.seq);
    }
  }
  announce_join(pending.connection, pending.session, joined);
  send_stored(pending.connection, rooms_.room(joined.room).name(), false, result.messages, pending.since,
              result.complete, result.first_seq);
}

void ChatApp::room_freed(std::string_view room) {
  if (memory_only_) log_->forget(room);
  log_->unwatch(room);  // no local member left: a delivering engine stops delivering it here
}

bool ChatApp::join_needs_read(uint32_t room_id, const ClientMessage& message) const {
  if (memory_only_) return false;
  // A delivering engine (shared by several nodes) knows a room's seq only while it has local
  // members: a room new here is always read.
  if (room_id == kNoIndex && log_->delivers()) return true;
  uint64_t last = log_->last_seq(message.room);
  const Room* room = room_id == kNoIndex ? nullptr : &rooms_.room(room_id);
  if (message.has_since_seq) {
    // Nothing missed, or a client that saw seqs this log never had: no message to send.
    if (message.since_seq >= last) return false;
    if (room == nullptr || last - message.since_seq > config_.recovery_limit) return true;
    const History& history = room->history();
    return history.empty() || history.at(0).seq > message.since_seq + 1 || history.last_seq() != last;
  }
  if (config_.history_size == 0 || last == 0) return false;  // history off, or an empty log
  if (room == nullptr) return true;
  return room->history().size() < room->history().capacity() && !room->history_complete();
}

void ChatApp::reply_join_from_ring(protocol::ConnectionId id, uint32_t room_id, const ClientMessage& message) {
  const Room& room = rooms_.room(room_id);
  if (!message.has_since_seq) {
    send_history(id, room, 0, 0);
    return;
  }
  uint64_t last = log_->last_seq(message.room);
  const History& history = room.history();
  // The ring's messages after since_seq, at most recovery_limit of the newest. With a durable
  // log join_needs_read made sure they are all there; memory only, the ring is all there is.
  size_t begin = history.size();
  while (begin > 0 && history.at(begin - 1).seq > message.since_seq) --begin;
  if (config_.recovery_limit != 0 && history.size() - begin > config_.recovery_limit) {
    begin = history.size() - config_.recovery_limit;
  }
  uint64_t first_seq = begin < history.size() ? history.at(begin).seq : last + 1;
  bool recovered = message.since_seq <= last && first_seq == message.since_seq + 1;
  if (message.since_seq == last) recovered = true;
  out_.clear();
  write_history_begin(out_, room.name());
  for (size_t i = begin; i < history.size(); ++i) {
    const HistoryEntry& entry = history.at(i);
    write_history_item(out_, entry.from, entry.text, entry.ts_ms, entry.seq, i == begin);
  }
  write_history_end_recovery(out_, recovered, first_seq);
  transport_.send_text(id, out_);
}

void ChatApp::send_stored(protocol::ConnectionId id, std::string_view name, bool dm,
                          const std::vector<StoredMessage>& messages, bool recovery, bool recovered,
                          uint64_t first_seq) {
  out_.clear();
  if (dm) {
    write_history_begin_dm(out_, name);
  } else {
    write_history_begin(out_, name);
  }
  bool first = true;
  for (const StoredMessage& message : messages) {
    write_history_item(out_, message.sender, message.text, message.ts_ms, message.seq, first);
    first = false;
  }
  if (recovery) {
    write_history_end_recovery(out_, recovered, first_seq);
  } else {
    write_history_end(out_);
  }
  transport_.send_text(id, out_);
}

void ChatApp::on_history(protocol::ConnectionId id, uint32_t session, const ClientMessage& message) {
  if (!message.with.empty()) {
    on_dm_history(id, session, message);
    return;
  }
  uint32_t room_id = joined_room(session, message.room);
  if (room_id == kNoIndex) {
    send_error(id, ChatError::kUnknownRoom, "not in that room", message.id);
    return;
  }
  const Room& room = rooms_.room(room_id);
  const History& history = room.history();
  // --history 0 turns history replies off; the log still keeps messages for recovery.
  size_t wanted = message.limit == 0 ? history.capacity() : message.limit;
  if (memory_only_ || wanted == 0 || history.select(message.before_seq, wanted).count == wanted ||
      room.history_complete() ||
      (!history.empty() && history.at(0).seq == 1)) {
    send_history(id, room, message.before_seq, static_cast<uint32_t>(wanted));
    return;
  }
  PendingRead pending;
  pending.kind = PendingRead::Kind::kHistory;
  pending.connection = id;
  pending.session = session;
  pending.name = room.name();
  pending.message_id = message.id;
  submit_read(std::move(pending), room.name(), message.before_seq, wanted, false);
}

void ChatApp::on_dm_history(protocol::ConnectionId id, uint32_t session, const ClientMessage& message) {
  // With plain hello anyone may claim any free name, and so read that user's DMs: served only
  // to a connection whose name a token or the embedder's authorize hook verified.
  if (!grants_.contains(session)) {
    send_error(id, ChatError::kRejected,
               "unverified: direct-message history needs a verified identity (a token), not hello", message.id);
    return;
  }
  PendingRead pending;
  pending.kind = PendingRead::Kind::kDmHistory;
  pending.connection = id;
  pending.session = session;
  pending.name = message.with;
  pending.message_id = message.id;
  size_t wanted = message.limit == 0 ? std::max<size_t>(config_.history_size, 1) : message.limit;
  submit_read(std::move(pending), dm_conversation(sessions_.get(session).name(), message.with), message.before_seq,
              wanted, false);
}

void ChatApp::send_history(protocol::ConnectionId id, const Room& room, uint64_t before_seq, uint32_t limit) {
  const History& history = room.history();
  size_t wanted = limit == 0 ? history.capacity() : limit;
  History::Range range = wanted == 0 ? History::Range{} : history.select(before_seq, wanted);
  out_.clear();
  write_history_begin(out_, room.name());
  for (size_t i = 0; i < range.count; ++i) {
    const HistoryEntry& entry = history.at(range.first + i);
    write_history_item(out_, entry.from, entry.text, entry.ts_ms, entry.seq, i == 0);
  }
  write_history_end(out_);
  transport_.send_text(id, out_);
}

}  // namespace chat
