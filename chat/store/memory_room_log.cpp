#include "chat/store/memory_room_log.h"

#include <algorithm>
#include <utility>

namespace chat {

MemoryRoomLog::MemoryRoomLog(const RoomLogConfig& config) : config_(config) {}

MemoryRoomLog::~MemoryRoomLog() = default;

uint64_t MemoryRoomLog::now_ms() const {
  return config_.wall_clock_ms != nullptr ? config_.wall_clock_ms() : room_log_realtime_ms();
}

void MemoryRoomLog::expire(Conversation& conversation, uint64_t now) {
  if (config_.max_age_ms == 0 || now < config_.max_age_ms) return;
  uint64_t cutoff = now - config_.max_age_ms;
  // Stops at the first young message, as the SQLite sweep does, so the kept range stays
  // contiguous even if the wall clock stepped back between messages.
  while (!conversation.messages.empty() && conversation.messages.front().ts_ms < cutoff) {
    conversation.messages.pop_front();
  }
}

void MemoryRoomLog::prune_dedup(uint64_t now) {
  if (now < config_.dedup_window_ms) return;
  uint64_t cutoff = now - config_.dedup_window_ms;
  while (!dedup_order_.empty() && dedup_order_.front().ts_ms < cutoff) {
    dedup_.erase(dedup_order_.front().key);
    dedup_order_.pop_front();
  }
}

Submit MemoryRoomLog::append(AppendRequest request) {
  AppendResult result;
  uint64_t now = now_ms();
  prune_dedup(now);
  std::string dedup_key;
  if (!request.client_id.empty()) {
    dedup_key = user_key(request.sender);
    dedup_key.push_back('\n');
    dedup_key.append(request.client_id);
    if (const DedupEntry* original = dedup_.find(dedup_key); original != nullptr) {
      result.status = LogStatus::kDuplicate;
      result.seq = original->seq;
      result.ts_ms = original->ts_ms;
      result.original_conversation = original->conversation;
      result.request = std::move(request);
      ++stats_.duplicates;
      if (client_ != nullptr) client_->on_appended(result);
      return Submit::kAccepted;
    }
  }
  auto [slot, inserted] = conversations_.try_emplace(request.conversation);
  if (inserted) *slot = std::make_unique<Conversation>();
  Conversation& conversation = **slot;
  uint64_t seq = ++conversation.last_seq;
  StoredMessage& stored = conversation.messages.emplace_back();
  stored.seq = seq;
  stored.ts_ms = request.ts_ms;
  stored.sender = request.sender;
  stored.text = request.text;
  stored.client_id = request.client_id;
  if (config_.history_keep != 0 && conversation.messages.size() > config_.history_keep) {
    conversation.messages.pop_front();
  }
  expire(conversation, now);
  if (!dedup_key.empty()) {
    dedup_.insert_or_assign(dedup_key, DedupEntry{request.conversation, seq, request.ts_ms});
    dedup_order_.push_back({request.ts_ms, std::move(dedup_key)});
  }
  ++stats_.commits;
  ++stats_.batches;
  ++stats_.messages;
  stats_.max_batch = 1;
  result.seq = seq;
  result.ts_ms = request.ts_ms;
  result.request = std::move(request);
  if (client_ != nullptr) client_->on_appended(result);
  return Submit::kAccepted;
}

void MemoryRoomLog::select(std::string_view name, uint64_t after, uint64_t before, size_t limit,
                           ReadResult& result) {
  result.conversation = name;
  std::unique_ptr<Conversation>* slot = conversations_.find(name);
  if (slot == nullptr) return;
  Conversation& conversation = **slot;
  expire(conversation, now_ms());
  result.last_seq = conversation.last_seq;
  const std::deque<StoredMessage>& messages = conversation.messages;
  if (messages.empty()) return;
  // Seqs are contiguous: index arithmetic instead of a search.
  uint64_t first = messages.front().seq;
  uint64_t begin_seq = std::max(first, after + 1);
  uint64_t end_seq = before == 0 ? conversation.last_seq + 1 : std::min(before, conversation.last_seq + 1);
  if (begin_seq >= end_seq) return;
  if (limit != 0 && end_seq - begin_seq > limit) begin_seq = end_seq - limit;
  for (uint64_t seq = begin_seq; seq < end_seq; ++seq) result.messages.push_back(messages[seq - first]);
}

Submit MemoryRoomLog::history(std::string_view conversation, uint64_t before_seq, size_t limit, uint64_t cookie) {
  ReadResult result;
  result.kind = ReadKind::kHistory;
  result.cookie = cookie;
  select(conversation, 0, before_seq, limit, result);
  result.complete = true;
  result.first_seq = result.messages.empty() ? result.last_seq + 1 : result.messages.front().seq;
  ++stats_.reads;
  if (client_ != nullptr) client_->on_read(result);
  return Submit::kAccepted;
}

Submit MemoryRoomLog::since(std::string_view conversation, uint64_t since_seq, size_t limit, uint64_t cookie) {
  ReadResult result;
  result.kind = ReadKind::kSince;
  result.cookie = cookie;
  select(conversation, since_seq, 0, limit, result);
  finish_since(result, since_seq);
  ++stats_.reads;
  if (client_ != nullptr) client_->on_read(result);
  return Submit::kAccepted;
}

uint64_t MemoryRoomLog::last_seq(std::string_view conversation) const {
  const std::unique_ptr<Conversation>* slot = conversations_.find(conversation);
  return slot == nullptr ? 0 : (*slot)->last_seq;
}

}  // namespace chat
