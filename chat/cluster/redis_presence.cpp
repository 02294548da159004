#include "chat/cluster/redis_presence.h"

#include <algorithm>
#include <charconv>
#include <random>

#include "chat/store/room_log.h"

namespace chat {

namespace {

// KEYS: claim keys. ARGV: owner node, expiry ms. Each name becomes (or stays) the owner's unless
// another node holds it. Returns one 1/0 per key. Used for a hello's claim and the refresh.
constexpr std::string_view kClaimScript = R"LUA(
local out = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder and holder ~= ARGV[1] then
    out[i] = 0
  else
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 1
  end
end
return out
)LUA";

// KEYS: claim key. ARGV: owner. Deletes the claim only if it is still the owner's.
constexpr std::string_view kReleaseScript = R"LUA(
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
)LUA";

// KEYS: resume:<lower name>. ARGV: ttl ms, token, node, kind ('v': a verified identity, '-'),
// name (as the session has it), rooms ('\t'-joined). A session held here for resume, for another
// node to take over (kTakeOverScript): "<node>\t<token's SHA-1>\t<kind>\t<name>\t<rooms>".
// The digest, never the token: whoever reads Redis cannot resume with it.
constexpr std::string_view kHoldScript = R"LUA(
redis.call('SET', KEYS[1], ARGV[3] .. '\t' .. redis.sha1hex(ARGV[2]) .. '\t' .. ARGV[4] .. '\t' .. ARGV[5] .. '\t' .. ARGV[6], 'PX', ARGV[1])
return 0
)LUA";

// KEYS: resume:<lower name>. ARGV: node. Deletes the record only if this node wrote it (one
// that another node wrote after taking the name over is that node's).
constexpr std::string_view kUnholdScript = R"LUA(
local record = redis.call('GET', KEYS[1])
if record and string.sub(record, 1, #ARGV[1] + 1) == ARGV[1] .. '\t' then redis.call('DEL', KEYS[1]) end
return 0
)LUA";

// KEYS: name:<lower name>, resume:<lower name>. ARGV: node, claim ttl ms, token ('': an identity
// verified at the handshake, which takes over any held session of its name), node channel
// prefix, lower name. Takes the name over from the node holding its session for resume: only
// while that node still holds the claim (or nobody does: it died), and with a token only a
// session that was not verified (a verified one comes back with its identity, and its grant)
// and whose digest matches. The record goes (a token resumes once), the claim becomes ours and
// the old node is told on its node channel (it ends its copy). Returns {1, "<name>\t<rooms>"}
// or {0}.
constexpr std::string_view kTakeOverScript = R"LUA(
local record = redis.call('GET', KEYS[2])
if not record then return {0} end
local node, digest, kind, rest = string.match(record, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$')
local holder = redis.call('GET', KEYS[1])
if not node or (holder and holder ~= node) then
  redis.call('DEL', KEYS[2])
  return {0}
end
if ARGV[3] ~= '' and (kind ~= '-' or digest ~= redis.sha1hex(ARGV[3])) then return {0} end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if holder and holder ~= ARGV[1] then redis.call('PUBLISH', ARGV[4] .. holder, ARGV[5]) end
return {1, rest}
)LUA";

// KEYS: m:<room>, nm:<node>. ARGV: node, room, channel, then changes "+user" (joined) or "-user"
// (left) in order. The room's hash and the node's undo set change together, and ONE event tells
// the batch: "<node>\tb\t+alice\t-bob\t#150" (issue 18: one publish per room per batch, not per
// join), ending with the room's members on every node after it ('#': a node that predates it
// skips what is neither '+' nor '-'). Returns that count too.
constexpr std::string_view kBatchScript = R"LUA(
local payload = {ARGV[1], 'b'}
for i = 4, #ARGV do
  local user = string.sub(ARGV[i], 2)
  local field = ARGV[1] .. '\t' .. user
  local entry = ARGV[2] .. '\t' .. user
  if string.sub(ARGV[i], 1, 1) == '+' then
    redis.call('HSET', KEYS[1], field, '1')
    redis.call('SADD', KEYS[2], entry)
  else
    redis.call('HDEL', KEYS[1], field)
    redis.call('SREM', KEYS[2], entry)
  end
  payload[#payload + 1] = ARGV[i]
end
local count = redis.call('HLEN', KEYS[1])
payload[#payload + 1] = '#' .. count
redis.call('PUBLISH', ARGV[3], table.concat(payload, '\t'))
return count
)LUA";

// KEYS: nm:<node>. ARGV: node, key prefix, then every "<room>\t<user>" member of this node now.
// Makes Redis agree with the node after its connection came back (or after a survivor swept it
// as dead): entries no longer true leave their room's hash with a `left`, missing ones are put
// back with a `joined`, and every hash entry is rewritten (a Redis that lost its data).
constexpr std::string_view kSyncScript = R"LUA(
local want = {}
for i = 3, #ARGV do want[ARGV[i]] = true end
local have = {}
for _, entry in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  have[entry] = true
  if not want[entry] then
    local room, user = string.match(entry, '^(.*)\t([^\t]*)$')
    if room then
      redis.call('HDEL', ARGV[2] .. 'm:' .. room, ARGV[1] .. '\t' .. user)
      redis.call('PUBLISH', ARGV[2] .. 'p:' .. room, ARGV[1] .. '\tl\t' .. user)
    end
    redis.call('SREM', KEYS[1], entry)
  end
end
for i = 3, #ARGV do
  local room, user = string.match(ARGV[i], '^(.*)\t([^\t]*)$')
  if room then
    redis.call('HSET', ARGV[2] .. 'm:' .. room, ARGV[1] .. '\t' .. user, '1')
    if not have[ARGV[i]] then
      redis.call('SADD', KEYS[1], ARGV[i])
      redis.call('PUBLISH', ARGV[2] .. 'p:' .. room, ARGV[1] .. '\tj\t' .. user)
    end
  end
end
return 0
)LUA";

// KEYS: nodes. ARGV: node, timeout ms, key prefix, sweep (1/0). Stamps this node with Redis's
// clock (one clock for every node), then, when allowed, removes every node unseen for the
// timeout: its members leave the rooms' hashes with a `left` each. ZREM decides who sweeps a
// node, so each dead node is swept once. Returns {1 if this node was not in the set, nodes swept}.
constexpr std::string_view kBeatScript = R"LUA(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call('ZADD', KEYS[1], now, ARGV[1])
local swept = 0
if ARGV[4] == '1' then
  local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
  for _, node in ipairs(dead) do
    if node ~= ARGV[1] and redis.call('ZREM', KEYS[1], node) == 1 then
      local set = ARGV[3] .. 'nm:' .. node
      for _, entry in ipairs(redis.call('SMEMBERS', set)) do
        local room, user = string.match(entry, '^(.*)\t([^\t]*)$')
        if room then
          redis.call('HDEL', ARGV[3] .. 'm:' .. room, node .. '\t' .. user)
          redis.call('PUBLISH', ARGV[3] .. 'p:' .. room, node .. '\tl\t' .. user)
        end
      end
      redis.call('DEL', set)
      swept = swept + 1
    end
  end
end
return {added, swept}
)LUA";

// Names refreshed per script call (one EVALSHA per batch every beat).
constexpr size_t kRefreshBatch = 256;
// Membership changes per batch script call: a long script would hold Redis (single-threaded)
// for every other node meanwhile.
constexpr size_t kChangesPerScript = 512;

RedisLinkConfig presence_link_config(const RedisEndpoint& endpoint, bool commands) {
  RedisLinkConfig link;
  link.endpoint = endpoint;
  link.max_pending = 16384;
  if (commands) {
    for (std::string_view script :
         {kClaimScript, kReleaseScript, kBatchScript, kSyncScript, kBeatScript, kHoldScript, kUnholdScript,
          kTakeOverScript}) {
      link.preamble.push_back({"SCRIPT", "LOAD", std::string(script)});
    }
  }
  return link;
}

}  // namespace

RedisPresence::RedisPresence(const RedisEndpoint& endpoint, reactor::EventLoop& loop, PresenceTiming timing)
    : timing_(timing), claim_sha_(script_sha1(kClaimScript)), release_sha_(script_sha1(kReleaseScript)),
      batch_sha_(script_sha1(kBatchScript)), sync_sha_(script_sha1(kSyncScript)),
      beat_sha_(script_sha1(kBeatScript)), hold_sha_(script_sha1(kHoldScript)),
      unhold_sha_(script_sha1(kUnholdScript)), take_over_sha_(script_sha1(kTakeOverScript)), loop_(loop),
      wheel_(loop.now_ms(), &RedisPresence::on_tick, this, 10), link_(loop, presence_link_config(endpoint, true)),
      subscriber_(loop, presence_link_config(endpoint, false)) {
  prefix_ = redis_key_prefix(endpoint);
  std::random_device random;
  node_id_ = std::to_string(random() | (uint64_t{random()} << 32));
  node_channel_ = key("node", node_id_);
  link_.set_on_up([this] {
    up_since_ms_ = loop_.now_ms();
    fresh_link_ = true;
    beat();  // stamps the heartbeat first; its reply re-asserts names and members
    // Records whose delete was lost with the connection: an old token must not stay good.
    std::unordered_set<std::string> stale;
    stale.swap(stale_holds_);
    for (const std::string& lower : stale) send_unhold(lower);
  });
  link_.set_on_down([this] { up_since_ms_ = 0; });
  subscriber_.set_on_up([this] {
    subscriber_.subscribe(node_channel_);
    for (const auto& [room, users] : rooms_) subscriber_.subscribe(key("p", room));
  });
  subscriber_.set_on_message(
      [this](std::string_view channel, std::string_view payload) { on_message(channel, payload); });
  loop.add_timer_wheel(&wheel_);
  wheel_.schedule(&tick_, timing_.beat_ms);
  link_.start();
  subscriber_.start();
}

RedisPresence::~RedisPresence() {
  client_ = nullptr;
  flush_changes();  // best effort: what the links still send before they close
  wheel_.cancel(&tick_);
}

std::string RedisPresence::key(std::string_view kind, std::string_view name) const {
  std::string out;
  out.reserve(prefix_.size() + kind.size() + 1 + name.size());
  out.append(prefix_).append(kind).append(":").append(name);
  return out;
}

void RedisPresence::on_tick(void* context, reactor::TimerNode* node) {
  auto* self = static_cast<RedisPresence*>(context);
  if (node == &self->batch_tick_) {
    self->flush_changes();
    return;
  }
  self->beat();
  self->wheel_.schedule(node, self->timing_.beat_ms);
}

void RedisPresence::beat() {
  if (!link_.connected()) return;
  // A node sweeps others only after its own link has been up a whole timeout: when Redis comes
  // back after an outage every stamp is old, and the live nodes need that long to stamp again.
  bool may_sweep = up_since_ms_ != 0 && loop_.now_ms() - up_since_ms_ >= timing_.node_timeout_ms;
  std::string timeout = std::to_string(timing_.node_timeout_ms);
  std::string nodes = key("nodes", "");
  nodes.pop_back();  // "parley:nodes"
  link_.command({"EVALSHA", beat_sha_, "1", nodes, node_id_, timeout, prefix_, may_sweep ? "1" : "0"},
                [this](redisReply* reply) {
                  // An error (LOADING: a restarted Redis replaying its AOF) leaves fresh_link_ set:
                  // the next beat syncs.
                  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return;
                  bool added = reply->element[0]->integer == 1;
                  nodes_swept_ += static_cast<uint64_t>(reply->element[1]->integer);
                  // A new connection (what changed during the outage was not written), or not
                  // in the node set (Redis lost our keys, or a survivor swept us as dead and told
                  // our rooms `left`): make Redis agree with this node again.
                  if (added || fresh_link_) {
                    fresh_link_ = false;
                    sync_members();
                  }
                });
  // Claims are refreshed every beat, in batches: a name held here never expires while the node
  // lives, and expires within node_timeout_ms of its death.
  std::vector<std::string> keys;
  std::string ttl = std::to_string(timing_.node_timeout_ms);
  auto flush = [&] {
    if (keys.empty()) return;
    std::vector<std::string_view> args{"EVALSHA", claim_sha_};
    std::string count = std::to_string(keys.size());
    args.push_back(count);
    for (const std::string& k : keys) args.push_back(k);
    args.push_back(node_id_);
    args.push_back(ttl);
    link_.command(args, [](redisReply*) {});
    keys.clear();
  };
  for (const std::string& name : names_) {
    keys.push_back(key("name", name));
    if (keys.size() == kRefreshBatch) flush();
  }
  flush();
}

void RedisPresence::sync_members() {
  std::vector<std::string> entries;
  for (const auto& [room, users] : rooms_) {
    for (const std::string& user : users) entries.push_back(room + "\t" + user);
  }
  std::vector<std::string_view> args{"EVALSHA", sync_sha_, "1"};
  std::string set = key("nm", node_id_);
  args.push_back(set);
  args.push_back(node_id_);
  args.push_back(prefix_);
  for (const std::string& entry : entries) args.push_back(entry);
  link_.command(args, [](redisReply*) {});
}

bool RedisPresence::claim(std::string_view name, uint64_t cookie) {
  if (pending_claims_ >= kMaxPendingClaims) return false;
  std::string lower = user_key(name);
  std::string ttl = std::to_string(timing_.node_timeout_ms);
  std::string claim_key = key("name", lower);
  RedisSubmit submit = link_.command(
      {"EVALSHA", claim_sha_, "1", claim_key, node_id_, ttl}, [this, cookie, lower](redisReply* reply) {
        --pending_claims_;
        ClaimResult result = ClaimResult::kUnavailable;
        if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
          result = reply->element[0]->integer == 1 ? ClaimResult::kOk : ClaimResult::kTaken;
        }
        if (result == ClaimResult::kOk) names_.insert(lower);
        if (client_ != nullptr) client_->on_claimed(cookie, lower, result);
      });
  if (submit != RedisSubmit::kQueued) return false;
  ++pending_claims_;
  return true;
}

void RedisPresence::adopt(std::string_view name) {
  std::string lower = user_key(name);
  if (!names_.insert(lower).second) return;
  std::string ttl = std::to_string(timing_.node_timeout_ms);
  // Not waited for: if Redis is away the next beat after it returns asserts it.
  link_.command({"EVALSHA", claim_sha_, "1", key("name", lower), node_id_, ttl}, [](redisReply*) {});
}

void RedisPresence::release(std::string_view name) {
  std::string lower = user_key(name);
  if (names_.erase(lower) == 0) return;
  // Redis away: the claim expires by itself within node_timeout_ms (it is no longer refreshed).
  link_.command({"EVALSHA", release_sha_, "1", key("name", lower), node_id_}, [](redisReply*) {});
}


void RedisPresence::hold(std::string_view name, std::string_view token, bool verified,
                         const std::vector<std::string>& rooms, uint64_t ttl_ms) {
  std::string lower = user_key(name);
  if (token.empty() || ttl_ms == 0 || !names_.contains(lower)) return;
  stale_holds_.erase(lower);  // a late delete would take this new record
  std::string joined;
  for (const std::string& room : rooms) joined.append(joined.empty() ? "" : "\t").append(room);
  // Redis away: not retried; a resume on another node then gets resume_failed, as before.
  link_.command({"EVALSHA", hold_sha_, "1", key("resume", lower), std::to_string(ttl_ms), token, node_id_,
                 verified ? "v" : "-", name, joined},
                [](redisReply*) {});
}

void RedisPresence::unhold(std::string_view name) { send_unhold(user_key(name)); }

void RedisPresence::send_unhold(const std::string& lower) {
  RedisSubmit submit =
      link_.command({"EVALSHA", unhold_sha_, "1", key("resume", lower), node_id_}, [this, lower](redisReply* reply) {
        if (reply == nullptr) stale_holds_.insert(lower);  // the connection dropped first: again on up
      });
  if (submit != RedisSubmit::kQueued) stale_holds_.insert(lower);
}

bool RedisPresence::take_over(std::string_view name, std::string_view token, uint64_t cookie) {
  if (pending_claims_ >= kMaxPendingClaims) return false;
  std::string lower = user_key(name);
  std::string ttl = std::to_string(timing_.node_timeout_ms);
  std::string channels = key("node", "");
  RedisSubmit submit = link_.command(
      {"EVALSHA", take_over_sha_, "2", key("name", lower), key("resume", lower), node_id_, ttl, token, channels, lower},
      [this, cookie, lower](redisReply* reply) {
        --pending_claims_;
        ClaimResult result = ClaimResult::kUnavailable;
        std::string name = lower;  // the session's own spelling when taken over
        std::vector<std::string> rooms;
        if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1) {
          result = reply->element[0]->integer == 1 ? ClaimResult::kOk : ClaimResult::kTaken;
          std::string_view rest = reply->elements == 2 ? reply_text(reply->element[1]) : std::string_view();
          for (bool first = true; !rest.empty(); first = false) {
            size_t tab = rest.find('\t');
            std::string_view field = rest.substr(0, tab);
            if (first && user_key(field) == lower) name = field;
            if (!first && !field.empty()) rooms.emplace_back(field);
            rest = tab == std::string_view::npos ? std::string_view() : rest.substr(tab + 1);
          }
        }
        if (result == ClaimResult::kOk) names_.insert(lower);
        if (client_ != nullptr) client_->on_taken_over(cookie, name, result, rooms);
      });
  if (submit != RedisSubmit::kQueued) return false;
  ++pending_claims_;
  return true;
}

void RedisPresence::joined(std::string_view room, std::string_view user) {
  auto [it, created] = rooms_.try_emplace(std::string(room));
  if (created) subscriber_.subscribe(key("p", room));  // down: on_up subscribes every room
  if (!it->second.emplace(user).second) return;
  note_change(room, '+', user);
}

void RedisPresence::left(std::string_view room, std::string_view user) {
  auto it = rooms_.find(std::string(room));
  if (it == rooms_.end() || it->second.erase(std::string(user)) == 0) return;
  note_change(room, '-', user);
  if (it->second.empty()) {
    rooms_.erase(it);
    subscriber_.unsubscribe(key("p", room));
  }
}

void RedisPresence::note_change(std::string_view room, char sign, std::string_view user) {
  std::string change;
  change.reserve(1 + user.size());
  change.append(1, sign).append(user);
  changes_[std::string(room)].push_back(std::move(change));
  if (timing_.batch_ms == 0) {
    flush_changes();
  } else if (!batch_tick_.armed()) {
    wheel_.schedule(&batch_tick_, timing_.batch_ms);
  }
}

void RedisPresence::flush_changes() {
  wheel_.cancel(&batch_tick_);
  for (auto& [room, changes] : changes_) flush_room(room, changes);
  changes_.clear();
}

void RedisPresence::flush_room(std::string_view room, std::vector<std::string>& changes) {
  std::string hash = key("m", room);
  std::string set = key("nm", node_id_);
  std::string channel = key("p", room);
  for (size_t from = 0; from < changes.size(); from += kChangesPerScript) {
    std::vector<std::string_view> args{"EVALSHA", batch_sha_, "2", hash, set, node_id_, room, channel};
    size_t to = std::min(changes.size(), from + kChangesPerScript);
    for (size_t i = from; i < to; ++i) args.push_back(changes[i]);
    // Redis away: written (with its events) by sync_members() when the link returns.
    link_.command(args, [this, room = std::string(room)](redisReply* reply) {
      if (reply != nullptr && reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0 && client_ != nullptr) {
        client_->on_room_count(room, static_cast<size_t>(reply->integer));
      }
    });
  }
  changes.clear();
}

void RedisPresence::typing(std::string_view room, std::string_view user, bool on) {
  // The room's batched joins first, on the same link: no node sees a user type before it joined.
  if (auto it = changes_.find(std::string(room)); it != changes_.end()) {
    flush_room(room, it->second);
    changes_.erase(it);
  }
  publish(room, on ? 't' : 's', user);
}

void RedisPresence::publish(std::string_view room, char kind, std::string_view user) {
  std::string payload;
  payload.reserve(node_id_.size() + user.size() + 3);
  payload.append(node_id_).append("\t").append(1, kind).append("\t").append(user);
  link_.command({"PUBLISH", key("p", room), payload}, [](redisReply*) {});
}

bool RedisPresence::members(std::string_view room, uint64_t cookie) {
  RedisSubmit submit = link_.command({"HKEYS", key("m", room)}, [this, cookie](redisReply* reply) {
    std::vector<std::string> remote;
    bool ok = reply != nullptr && reply->type == REDIS_REPLY_ARRAY;
    if (ok) {
      for (size_t i = 0; i < reply->elements; ++i) {
        std::string_view field = reply_text(reply->element[i]);
        size_t tab = field.find('\t');
        if (tab == std::string_view::npos || field.substr(0, tab) == node_id_) continue;
        remote.emplace_back(field.substr(tab + 1));
      }
    }
    if (client_ != nullptr) client_->on_members(cookie, ok, remote);
  });
  return submit == RedisSubmit::kQueued;
}

void RedisPresence::on_message(std::string_view channel, std::string_view payload) {
  if (channel == node_channel_) {
    // kTakeOverScript: another node resumed the session of `payload` (a lower name) held here.
    // Forgotten first, so that ending the session neither releases the claim nor deletes a
    // resume record that is the new owner's.
    if (names_.erase(std::string(payload)) != 0 && client_ != nullptr) client_->on_name_lost(payload);
    return;
  }
  std::string_view room_prefix = "p:";
  if (!channel.starts_with(prefix_) || !channel.substr(prefix_.size()).starts_with(room_prefix)) return;
  std::string_view room = channel.substr(prefix_.size() + room_prefix.size());
  size_t first = payload.find('\t');
  if (first == std::string_view::npos || first + 2 >= payload.size() || payload[first + 2] != '\t') return;
  if (payload.substr(0, first) == node_id_) return;  // our own event: told locally already
  std::string_view user = payload.substr(first + 3);
  if (payload[first + 1] == 'b') {
    // A batch: "+user" / "-user" separated by tabs, then "#<members>" (kBatchScript).
    while (!user.empty() && client_ != nullptr) {
      size_t tab = user.find('\t');
      std::string_view change = user.substr(0, tab);
      if (change.size() > 1 && (change[0] == '+' || change[0] == '-')) {
        client_->on_remote_presence(room, change.substr(1),
                                    change[0] == '+' ? PresenceEvent::kJoined : PresenceEvent::kLeft);
      } else if (change.size() > 1 && change[0] == '#') {
        size_t members = 0;
        auto [end, error] = std::from_chars(change.data() + 1, change.data() + change.size(), members);
        if (error == std::errc() && end == change.data() + change.size()) client_->on_room_count(room, members);
      }
      user = tab == std::string_view::npos ? std::string_view() : user.substr(tab + 1);
    }
    return;
  }
  PresenceEvent event;
  switch (payload[first + 1]) {
    case 'j': event = PresenceEvent::kJoined; break;
    case 'l': event = PresenceEvent::kLeft; break;
    case 't': event = PresenceEvent::kTypingOn; break;
    case 's': event = PresenceEvent::kTypingOff; break;
    default: return;
  }
  if (client_ != nullptr && !user.empty()) client_->on_remote_presence(room, user, event);
}

}  // namespace chat
