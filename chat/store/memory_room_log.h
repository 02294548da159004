#pragma once
// The memory engine of the room log (room_log.h): tests and `--store none`. Nothing survives
// the process. Every request completes synchronously, inside the call, through the same
// RoomLogClient path the SQLite engine uses, so ChatApp has one code path for both.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "chat/flat_map.h"
#include "chat/store/room_log.h"

namespace chat {

class MemoryRoomLog final : public RoomLog {
 public:
  // Uses history_keep, max_age_ms, dedup_window_ms and wall_clock_ms of `config`.
  explicit MemoryRoomLog(const RoomLogConfig& config);
  ~MemoryRoomLog() override;

  void set_client(RoomLogClient* client) override { client_ = client; }
  // Never kFull: the completion is delivered before the call returns.
  Submit append(AppendRequest request) override;
  Submit history(std::string_view conversation, uint64_t before_seq, size_t limit, uint64_t cookie) override;
  Submit since(std::string_view conversation, uint64_t since_seq, size_t limit, uint64_t cookie) override;
  uint64_t last_seq(std::string_view conversation) const override;
  RoomLogStats stats() const override { return stats_; }
  // Drops the conversation's messages and seq (its client ids stay until they expire).
  void forget(std::string_view conversation) override { conversations_.erase(conversation); }

 private:
  struct Conversation {
    std::deque<StoredMessage> messages;  // ascending seq, contiguous
    uint64_t last_seq = 0;
  };
  struct DedupEntry {
    std::string conversation;
    uint64_t seq = 0;
    uint64_t ts_ms = 0;
  };
  uint64_t now_ms() const;
  // Drops messages of `conversation` older than max_age_ms.
  void expire(Conversation& conversation, uint64_t now);
  // Forgets client ids committed longer than dedup_window_ms ago.
  void prune_dedup(uint64_t now);
  // Fills `result` with messages of `conversation` in (after, before) (0: no bound), newest
  // `limit` of them.
  void select(std::string_view conversation, uint64_t after, uint64_t before, size_t limit, ReadResult& result);

  RoomLogConfig config_;
  RoomLogClient* client_ = nullptr;
  // Held by pointer: FlatMap moves values when it grows, and a deque's move is not noexcept.
  FlatMap<std::string, std::unique_ptr<Conversation>> conversations_;
  // user_key(sender) + '\n' + client id -> the original ack. '\n' cannot occur in a user name.
  FlatMap<std::string, DedupEntry> dedup_;
  struct DedupAge {
    uint64_t ts_ms;
    std::string key;
  };
  std::deque<DedupAge> dedup_order_;  // insertion order, for pruning
  RoomLogStats stats_;
};

}  // namespace chat
