#pragma once
// Presence and user names across nodes (issue 15, DESIGN.md "Where chat state lives": "a second
// small interface (local or Redis)"). ChatApp keeps rooms, members and names of its own node in
// memory as before; through this interface it claims names cluster-wide, tells other nodes of
// joined/left/typing, hears theirs, and asks who is in a room on any node.
//
// Local (no `--redis`): ChatApp has no Presence (null) and behaves exactly as before. Redis:
// RedisPresence (redis_presence.h). Every call and callback runs on the loop thread.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chat {

// The answer to a name claim.
enum class ClaimResult : uint8_t {
  kOk,           // the name is this node's (new, or already ours)
  kTaken,        // another node holds it
  kUnavailable,  // no answer (Redis away or the connection dropped before the reply)
};

// A presence event of one user in one room.
enum class PresenceEvent : uint8_t { kJoined, kLeft, kTypingOn, kTypingOff };

// What a Presence reports back (ChatApp).
class PresenceClient {
 public:
  virtual ~PresenceClient() = default;
  // The claim submitted with `cookie` was answered.
  virtual void on_claimed(uint64_t cookie, std::string_view name, ClaimResult result) = 0;
  // A user on another node joined/left/typed in `room` (also `left` for the users of a node
  // declared dead).
  virtual void on_remote_presence(std::string_view room, std::string_view user, PresenceEvent event) = 0;
  // `room` had `members` on every node together when a batch of joins and leaves (this node's
  // or another's, told after its changes) was applied: what a big room's `count` says (issue
  // 18). Not every change comes with one: a count lags by up to one batch.
  virtual void on_room_count(std::string_view room, size_t members) { (void)room, (void)members; }
  // The members() asked with `cookie`: `remote` are the users of `room` on other nodes; `ok`
  // false when the answer could not be had (answer from local members only).
  virtual void on_members(uint64_t cookie, bool ok, const std::vector<std::string>& remote) = 0;
  // The take_over() asked with `cookie` was answered: kOk, the name is this node's now, `name`
  // spelled as the session had it and `rooms` the rooms it held on the other node; kTaken, no
  // session of `name` is held for resume anywhere with that token (or at all).
  virtual void on_taken_over(uint64_t cookie, std::string_view name, ClaimResult result,
                             const std::vector<std::string>& rooms) {
    (void)cookie, (void)name, (void)result, (void)rooms;
  }
  // Another node took over `name`, which this node holds (its session resumed there): the
  // session here ends, and the name is no longer this node's.
  virtual void on_name_lost(std::string_view name) { (void)name; }
};

class Presence {
 public:
  virtual ~Presence() = default;
  // Where results go; must outlive this (or be reset to null first).
  virtual void set_client(PresenceClient* client) = 0;
  // Asks for `name` cluster-wide (case-insensitively); on_claimed(cookie, ...) follows, never
  // inside this call. False when nothing was submitted (Redis away, too many claims pending):
  // the caller answers `unavailable`.
  virtual bool claim(std::string_view name, uint64_t cookie) = 0;
  // Makes `name` this node's without asking the caller to wait (an identity verified at the
  // handshake: the token's subject is that user); kept and re-asserted like a claimed name.
  virtual void adopt(std::string_view name) = 0;
  // The name is no longer held on this node (its session ended): the claim goes.
  virtual void release(std::string_view name) = 0;
  // `user`, on this node, joined / left `room`; typing in it.
  virtual void joined(std::string_view room, std::string_view user) = 0;
  virtual void left(std::string_view room, std::string_view user) = 0;
  virtual void typing(std::string_view room, std::string_view user, bool on) = 0;
  // Asks for the members of `room` on other nodes; on_members(cookie, ...) follows, never inside
  // this call. False when nothing was submitted (answer locally).
  virtual bool members(std::string_view room, uint64_t cookie) = 0;

  // Session resume across nodes (docs/redis.md "Resume on another node"): a reload or reconnect lands on any node
  // of the chat (SO_REUSEPORT workers, a load balancer), while the session is held where the
  // connection dropped. `name`'s session is held here for resume with `token` (its last
  // welcome's) for `ttl_ms`, a member of `rooms`: another node may take it over (with the token,
  // unless `verified`: a verified identity comes back with its identity, and its grant).
  virtual void hold(std::string_view name, std::string_view token, bool verified,
                    const std::vector<std::string>& rooms, uint64_t ttl_ms) {
    (void)name, (void)token, (void)verified, (void)rooms, (void)ttl_ms;
  }
  // The session held for `name` was resumed here or ended: nobody takes it over any more.
  virtual void unhold(std::string_view name) { (void)name; }
  // A hello whose resume token this node does not know: takes `name` over from the node holding
  // its session for resume with `token` ("" for an identity verified at the handshake: any held
  // session of it). on_taken_over(cookie, ...) follows, never inside this call; false when
  // nothing was submitted (answer `unavailable`).
  virtual bool take_over(std::string_view name, std::string_view token, uint64_t cookie) {
    (void)name, (void)token, (void)cookie;
    return false;
  }
};

}  // namespace chat
