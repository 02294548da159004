#pragma once
// The Redis engine of the room log (issue 15; chat/store/room_log.h): one chat across every
// parleyd pointed at the same Redis. Per message, one Lua script (EVALSHA, pipelined) checks the
// sender's client id (dedup), takes the conversation's next seq (INCR), appends to its stream
// (XADD, MAXLEN ~ history_keep, the stream id is `<seq>-0`) and PUBLISHes the message with its
// seq; history and recovery read the stream (XREVRANGE). The engine delivers (RoomLog::delivers):
// a second connection SUBSCRIBEs to the rooms with local members and to the users connected here,
// and hands every message to RoomLogClient::on_delivered in seq order, filling a seq jump from
// the stream before delivering further. The sender's ack follows the script's reply.
//
// Keys (prefix "parley:"): seq:<conv> (counter), log:<conv> (stream), id:<user>:<client id>
// ("seq ts conv", expires after the dedup window); channels c:<room> and u:<user> (DMs).
//
// While Redis is away every append and read completes kUnavailable at once (nothing is queued
// across an outage); when it returns, the subscriber resubscribes and each watched room is
// brought up to the stream's seq before live messages flow again. See docs/redis.md.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "chat/cluster/redis_link.h"
#include "chat/store/room_log.h"

namespace chat {

// Opens the Redis engine: probes `endpoint` (blocking, at start-up: one-line `error` and null
// when Redis is unreachable or refuses AUTH/SELECT), then connects its two links on `loop`.
// Uses config.history_keep (stream MAXLEN ~), max_age_ms (trimmed on append, filtered on read),
// dedup_window_ms and queue_limit. `endpoint.host` must be numeric (resolve_redis_endpoint).
std::unique_ptr<RoomLog> open_redis_room_log(const RoomLogConfig& config, const RedisEndpoint& endpoint,
                                             reactor::EventLoop& loop, std::string& error);

class RedisRoomLog final : public RoomLog {
 public:
  // Starts both connections (non-blocking); requests before they are up are written once they are.
  RedisRoomLog(const RoomLogConfig& config, const RedisEndpoint& endpoint, reactor::EventLoop& loop);
  ~RedisRoomLog() override;

  void set_client(RoomLogClient* client) override { client_ = client; }
  Submit append(AppendRequest request) override;
  Submit history(std::string_view conversation, uint64_t before_seq, size_t limit, uint64_t cookie) override;
  Submit since(std::string_view conversation, uint64_t since_seq, size_t limit, uint64_t cookie) override;
  // Watched: the last seq delivered. Else the newest seq a completion showed (appends and reads
  // of this process; a bounded cache, so 0 also means "not known here": ask Redis with a read).
  uint64_t last_seq(std::string_view conversation) const override;
  RoomLogStats stats() const override;
  // parley_redis_*: whether both connections are up, connects and losses, watched rooms and
  // users, gap fills and messages held back behind a gap.
  void render_engine_metrics(std::string& out) const override;
  bool available() const override { return connected(); }
  bool delivers() const override { return true; }
  void watch(std::string_view conversation, uint64_t after_seq) override;
  void unwatch(std::string_view conversation) override;
  void watch_user(std::string_view name) override;
  void unwatch_user(std::string_view name) override;

  // True when both connections are up (tests; /metrics).
  bool connected() const { return link_.connected() && subscriber_.connected(); }
  // True when the command connection is down: requests complete kUnavailable inside the call.
  bool commands_down() const { return !link_.connected(); }
  // This process's id in published messages (random per start).
  const std::string& node_id() const { return node_id_; }

 private:
  // A parsed published message; views into the payload.
  struct Published {
    uint64_t seq = 0;
    uint64_t ts_ms = 0;
    std::string_view node;
    uint64_t cookie = 0;
    std::string_view sender;
    std::string_view client_id;
    std::string_view recipient;
    std::string_view conversation;
    std::string_view text;
  };
  // An owned message waiting for the gap before it to be filled.
  struct Buffered {
    uint64_t ts_ms = 0;
    uint64_t origin_cookie = 0;
    std::string sender;
    std::string text;
  };
  struct Watched {
    uint64_t delivered = 0;  // every seq up to this was handed to the client
    bool filling = false;    // a read of the gap is in flight
    std::map<uint64_t, Buffered> buffered;  // live messages past a gap, by seq
  };
  struct Read {
    ReadKind kind = ReadKind::kHistory;
    std::string conversation;
    uint64_t bound = 0;
    size_t limit = 0;
    uint64_t cookie = 0;
    int attempts = 0;
  };

  static bool parse_published(std::string_view payload, Published& out);
  Submit submit_read(Read read);
  void on_script_reply(AppendRequest& request, redisReply* reply);
  void on_read_reply(Read& read, redisReply* reply);
  void on_message(std::string_view channel, std::string_view payload);
  void on_subscribed(std::string_view channel);
  void catch_up(const std::string& conversation, int attempt);
  void resubscribe();
  void deliver(std::string_view conversation, Watched& watched, uint64_t seq, uint64_t ts_ms, std::string_view sender,
               std::string_view text, uint64_t origin_cookie);
  void drain_buffered(std::string_view conversation, Watched& watched);
  void fill(const std::string& conversation, uint64_t up_to);
  void note_completed();
  std::string key(std::string_view kind, std::string_view name) const;

  RoomLogConfig config_;
  RoomLogClient* client_ = nullptr;
  std::string node_id_;
  std::string prefix_;  // redis_key_prefix(endpoint)
  std::string append_sha_;
  std::string read_sha_;
  std::unordered_map<std::string, Watched> watched_;
  std::unordered_set<std::string> users_;  // lowercased
  std::unordered_map<std::string, uint64_t> known_last_;  // last_seq() of unwatched conversations
  void note_last(std::string_view conversation, uint64_t seq);
  RoomLogStats stats_;
  uint64_t gap_fills_ = 0;  // XRANGE reads sent to fill a seq gap (a lost or late publish)
  bool refused_ = false;  // a kFull episode is open: on_writable when the depth halves
  // Last, so destroyed first: freeing a link answers its pending commands with null, and those
  // callbacks use the members above.
  RedisLink link_;        // commands: scripts and reads, in order
  RedisLink subscriber_;  // pub/sub only
};

}  // namespace chat
