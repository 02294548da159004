#pragma once
// The Redis engine of Presence (issue 15, chat/cluster/presence.h): names unique across every
// parleyd on one Redis, joined/left/typing and `who` across nodes, and the users of a dead node
// leaving everyone's rooms within a bound. Keys (prefix "parley:"):
//   name:<lower name>   the claim: value = the owning node's id, PX kClaimTtlMs, refreshed by it
//   m:<room>            hash of the room's members on every node: field "<node>\t<user>"
//   nm:<node>           set of "<room>\t<user>" this node put in m:* (what to undo if it dies)
//   nodes               sorted set: node id -> last heartbeat (Redis's TIME, ms)
//   resume:<lower name> a session held for resume on its node: "<node>\t<sha1 of its token>\t
//                       <v|->\t<name>\t<rooms>", PX the resume window; another node takes the
//                       name over with the token (or a verified identity of the name)
//   channel node:<node> names another node took over from this one (their sessions end here)
//   channel p:<room>    presence events "<node>\t<j|l|t|s>\t<user>" (t: typing on, s: stopped),
//                       and batches "<node>\tb\t+<joined user>\t-<left user>...\t#<members>"
//                       (issue 18: a node's joins and leaves of a room are sent once per
//                       batch_ms, in order, with the room's count on every node after them)
// Every kBeatMs each node runs one script that stamps its heartbeat and, atomically, removes the
// nodes not seen for kNodeTimeoutMs: their members leave m:* and a `left` is published for each
// (ZREM picks exactly one sweeper). Bounds: see docs/redis.md.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "chat/cluster/presence.h"
#include "chat/cluster/redis_link.h"
#include "reactor/event_loop.h"
#include "reactor/timer_wheel.h"

namespace chat {

// Timing of claims and heartbeats (docs/redis.md "Bounds").
struct PresenceTiming {
  uint64_t beat_ms = 5000;           // heartbeat, sweep and claim refresh period
  uint64_t node_timeout_ms = 15000;  // a node unseen this long is dead; also a claim's expiry
  uint64_t batch_ms = 50;            // joins and leaves gathered per room this long (0: each at once)
};

class RedisPresence final : public Presence {
 public:
  // Connects its two links on `loop` (non-blocking; the caller probed Redis at start-up) and
  // starts the heartbeat. `loop` must outlive this; loop thread only.
  RedisPresence(const RedisEndpoint& endpoint, reactor::EventLoop& loop, PresenceTiming timing = {});
  ~RedisPresence() override;

  void set_client(PresenceClient* client) override { client_ = client; }
  bool claim(std::string_view name, uint64_t cookie) override;
  void adopt(std::string_view name) override;
  void release(std::string_view name) override;
  void joined(std::string_view room, std::string_view user) override;
  void left(std::string_view room, std::string_view user) override;
  void typing(std::string_view room, std::string_view user, bool on) override;
  bool members(std::string_view room, uint64_t cookie) override;
  void hold(std::string_view name, std::string_view token, bool verified, const std::vector<std::string>& rooms,
            uint64_t ttl_ms) override;
  void unhold(std::string_view name) override;
  bool take_over(std::string_view name, std::string_view token, uint64_t cookie) override;

  // This node's id (random per start).
  const std::string& node_id() const { return node_id_; }
  // Claims awaiting a reply, at most kMaxPendingClaims.
  size_t pending_claims() const { return pending_claims_; }
  // Nodes this one removed as dead since start.
  uint64_t nodes_swept() const { return nodes_swept_; }

  // Claims awaiting Redis's reply, at most; past it claim() returns false (`unavailable`).
  static constexpr size_t kMaxPendingClaims = 4096;

 private:
  static void on_tick(void* context, reactor::TimerNode* node);
  void beat();
  // Sends every local member to Redis in one script that also removes what is no longer true.
  void sync_members();
  void publish(std::string_view room, char kind, std::string_view user);
  // Adds a change ('+' joined, '-' left) of `user` to `room`'s batch; arms the batch timer.
  void note_change(std::string_view room, char sign, std::string_view user);
  // Writes and publishes every room's batch now / `room`'s (emptied).
  void flush_changes();
  void flush_room(std::string_view room, std::vector<std::string>& changes);
  void on_message(std::string_view channel, std::string_view payload);
  // Deletes this node's resume record of `lower` (kUnholdScript); kept in stale_holds_ to send
  // again when the link comes back if the delete could not be sent or was not answered.
  void send_unhold(const std::string& lower);
  std::string key(std::string_view kind, std::string_view name) const;

  PresenceClient* client_ = nullptr;
  PresenceTiming timing_;
  std::string node_id_;
  std::string prefix_;  // redis_key_prefix(endpoint)
  std::string node_channel_;  // node:<node_id_>, where take-overs of this node's names are told
  std::string claim_sha_;
  std::string release_sha_;
  std::string batch_sha_;
  std::string sync_sha_;
  std::string beat_sha_;
  std::string hold_sha_;
  std::string unhold_sha_;
  std::string take_over_sha_;
  std::unordered_set<std::string> names_;  // lowercased names held here (identified or held)
  std::unordered_set<std::string> stale_holds_;  // resume records whose delete was lost
  // Local members by room (names as joined); a room's entry exists while it has one.
  std::unordered_map<std::string, std::unordered_set<std::string>> rooms_;
  size_t pending_claims_ = 0;
  uint64_t nodes_swept_ = 0;
  uint64_t up_since_ms_ = 0;  // when the command link last came up (0: down)
  bool fresh_link_ = false;   // the next beat is the first on a new connection: re-assert members
  reactor::EventLoop& loop_;
  // Changes not yet sent, by room, in order ("+user" / "-user").
  std::unordered_map<std::string, std::vector<std::string>> changes_;
  reactor::TimerNode tick_;
  reactor::TimerNode batch_tick_;  // armed while changes_ waits
  reactor::TimerWheel wheel_;
  // Last, so destroyed first: freeing a link answers its pending commands with null, and those
  // callbacks use the members above.
  RedisLink link_;        // commands and scripts
  RedisLink subscriber_;  // presence channels
};

}  // namespace chat
