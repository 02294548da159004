#include "chat/cluster/redis_room_log.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <random>

#include "chat/prometheus_text.h"

namespace chat {

namespace {

// KEYS: dedup key ('' for none), seq key, stream key. ARGV: ts, sender, text, client id, dedup
// window ms, MAXLEN ('0': none), channel, node, cookie, recipient, conversation, max age ms
// ('0': none).
// Returns {1, seq} for a new message, {0, "seq ts conversation"} for a duplicate. Atomic: Redis
// runs a script to the end before anything else (no other seq can interleave).
// Age retention (--history-max-age): stream ids are seqs, not times, so XTRIM MINID cannot cut by
// age directly. Each append drops up to 16 expired entries from the head (entries are appended in
// time order, so the expired ones are a prefix; 16 per append outpaces the one added), and the
// stream key expires after max age of silence, when every entry in it is older than that. The
// seq key never expires: seqs stay strictly increasing.
constexpr std::string_view kAppendScript = R"LUA(
local dedup = KEYS[1]
if dedup ~= '' then
  local seen = redis.call('GET', dedup)
  if seen then return {0, seen} end
end
local seq = redis.call('INCR', KEYS[2])
local id = seq .. '-0'
if ARGV[6] ~= '0' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], id, 'f', ARGV[2], 't', ARGV[1], 'x', ARGV[3], 'c', ARGV[4], 'n', ARGV[8], 'k', ARGV[9])
else
  redis.call('XADD', KEYS[3], id, 'f', ARGV[2], 't', ARGV[1], 'x', ARGV[3], 'c', ARGV[4], 'n', ARGV[8], 'k', ARGV[9])
end
if ARGV[12] ~= '0' then
  redis.call('PEXPIRE', KEYS[3], ARGV[12])
  local cutoff = tonumber(ARGV[1]) - tonumber(ARGV[12])
  local head = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 16)
  local keep_from = nil
  for _, entry in ipairs(head) do
    if tonumber(entry[2][4]) >= cutoff then keep_from = entry[1]; break end
  end
  if keep_from == nil then keep_from = (tonumber(string.match(head[#head][1], '^%d+')) + 1) .. '-0' end
  redis.call('XTRIM', KEYS[3], 'MINID', keep_from)
end
if dedup ~= '' then redis.call('SET', dedup, seq .. ' ' .. ARGV[1] .. ' ' .. ARGV[11], 'PX', ARGV[5]) end
redis.call('PUBLISH', ARGV[7], seq .. ' ' .. ARGV[1] .. ' ' .. ARGV[8] .. ' ' .. ARGV[9] .. ' ' .. #ARGV[2] .. ' ' ..
  #ARGV[4] .. ' ' .. #ARGV[10] .. ' ' .. #ARGV[11] .. '\n' .. ARGV[2] .. ARGV[4] .. ARGV[10] .. ARGV[11] .. ARGV[3])
return {1, seq}
)LUA";

// KEYS: seq key, stream key. ARGV: XREVRANGE end, start, COUNT ('0': all). Returns {last seq,
// entries newest first}: one script so the seq and the entries are one snapshot.
constexpr std::string_view kReadScript = R"LUA(
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local entries
if ARGV[3] == '0' then
  entries = redis.call('XREVRANGE', KEYS[2], ARGV[1], ARGV[2])
else
  entries = redis.call('XREVRANGE', KEYS[2], ARGV[1], ARGV[2], 'COUNT', ARGV[3])
end
return {last, entries}
)LUA";

// Reads after a retry still short of what was delivered are served as they are.
constexpr int kReadAttempts = 3;

bool parse_u64(std::string_view text, uint64_t& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

// The seq of a stream id "<seq>-0".
uint64_t seq_of_id(std::string_view id) {
  uint64_t seq = 0;
  parse_u64(id.substr(0, id.find('-')), seq);
  return seq;
}

RedisLinkConfig link_config(const RoomLogConfig& config, const RedisEndpoint& endpoint) {
  RedisLinkConfig link;
  link.endpoint = endpoint;
  link.max_pending = config.queue_limit == 0 ? 16384 : config.queue_limit;
  return link;
}

// The command link loads both scripts first on every connection, so EVALSHA meets NOSCRIPT only
// if someone flushes the script cache meanwhile (then: unavailable, and a reload).
RedisLinkConfig command_link_config(const RoomLogConfig& config, const RedisEndpoint& endpoint) {
  RedisLinkConfig link = link_config(config, endpoint);
  link.preamble.push_back({"SCRIPT", "LOAD", std::string(kAppendScript)});
  link.preamble.push_back({"SCRIPT", "LOAD", std::string(kReadScript)});
  return link;
}

// A stream entry as a StoredMessage; false for a malformed one. `node`/`cookie` get the origin.
bool parse_entry(const redisReply* entry, StoredMessage& message, std::string_view* node, uint64_t* cookie) {
  if (entry == nullptr || entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) return false;
  message.seq = seq_of_id(reply_text(entry->element[0]));
  const redisReply* fields = entry->element[1];
  if (message.seq == 0 || fields->type != REDIS_REPLY_ARRAY) return false;
  for (size_t i = 0; i + 1 < fields->elements; i += 2) {
    std::string_view name = reply_text(fields->element[i]);
    std::string_view value = reply_text(fields->element[i + 1]);
    if (name == "f") message.sender = value;
    else if (name == "t") parse_u64(value, message.ts_ms);
    else if (name == "x") message.text = value;
    else if (name == "c") message.client_id = value;
    else if (name == "n" && node != nullptr) *node = value;
    else if (name == "k" && cookie != nullptr) parse_u64(value, *cookie);
  }
  return true;
}

}  // namespace

std::unique_ptr<RoomLog> open_redis_room_log(const RoomLogConfig& config, const RedisEndpoint& endpoint,
                                             reactor::EventLoop& loop, std::string& error) {
  if (!probe_redis(endpoint, 2000, error)) return nullptr;
  return std::make_unique<RedisRoomLog>(config, endpoint, loop);
}

RedisRoomLog::RedisRoomLog(const RoomLogConfig& config, const RedisEndpoint& endpoint, reactor::EventLoop& loop)
    : config_(config), append_sha_(script_sha1(kAppendScript)), read_sha_(script_sha1(kReadScript)),
      link_(loop, command_link_config(config, endpoint)), subscriber_(loop, link_config(config, endpoint)) {
  prefix_ = redis_key_prefix(endpoint);
  node_id_ = std::to_string(std::random_device{}() | (uint64_t{std::random_device{}()} << 32));
  stats_.queue_limit = config_.queue_limit;
  subscriber_.set_on_up([this] { resubscribe(); });
  subscriber_.set_on_message([this](std::string_view channel, std::string_view payload) { on_message(channel, payload); });
  subscriber_.set_on_subscribed([this](std::string_view channel) { on_subscribed(channel); });
  link_.start();
  subscriber_.start();
}

RedisRoomLog::~RedisRoomLog() { client_ = nullptr; }  // the links answer pending commands with null

std::string RedisRoomLog::key(std::string_view kind, std::string_view name) const {
  std::string out;
  out.reserve(prefix_.size() + kind.size() + 1 + name.size());
  out.append(prefix_).append(kind).append(":").append(name);
  return out;
}

Submit RedisRoomLog::append(AppendRequest moved) {
  // The arguments are views into the request: it is moved into the callback's state first.
  auto shared = std::make_shared<AppendRequest>(std::move(moved));
  const AppendRequest& request = *shared;
  std::string dedup = request.client_id.empty() ? std::string()
                                                : key("id", user_key(request.sender) + ":" + request.client_id);
  std::string channel = request.recipient.empty() ? key("c", request.conversation) : key("u", user_key(request.recipient));
  std::string ts = std::to_string(request.ts_ms);
  std::string window = std::to_string(std::max<uint64_t>(config_.dedup_window_ms, 1));
  std::string keep = std::to_string(config_.history_keep);
  std::string cookie = std::to_string(request.cookie);
  std::string seq_key = key("seq", request.conversation);
  std::string log_key = key("log", request.conversation);
  std::string max_age = std::to_string(config_.max_age_ms);
  std::vector<std::string_view> args = {"EVALSHA", append_sha_, "3", dedup, seq_key, log_key, ts, request.sender,
                                        request.text, request.client_id, window, keep, channel, node_id_, cookie,
                                        request.recipient, request.conversation, max_age};
  RedisSubmit submit = link_.command(args, [this, shared](redisReply* reply) { on_script_reply(*shared, reply); });
  if (submit == RedisSubmit::kFull) {
    ++stats_.rejected_full;
    refused_ = true;
    return Submit::kFull;
  }
  if (submit == RedisSubmit::kDown) {
    // Redis is away: completed at once, nothing stored (the client resends with the same id).
    on_script_reply(*shared, nullptr);
  }
  return Submit::kAccepted;
}

void RedisRoomLog::on_script_reply(AppendRequest& request, redisReply* reply) {
  AppendResult result;
  result.status = LogStatus::kUnavailable;
  if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
      reply->element[0]->type == REDIS_REPLY_INTEGER) {
    if (reply->element[0]->integer == 1 && reply->element[1]->type == REDIS_REPLY_INTEGER) {
      result.status = LogStatus::kOk;
      result.seq = static_cast<uint64_t>(reply->element[1]->integer);
      result.ts_ms = request.ts_ms;
      note_last(request.conversation, result.seq);
    } else {
      // "seq ts conversation" of the original.
      std::string_view original = reply_text(reply->element[1]);
      size_t first = original.find(' ');
      size_t second = first == std::string_view::npos ? first : original.find(' ', first + 1);
      if (second != std::string_view::npos && parse_u64(original.substr(0, first), result.seq) &&
          parse_u64(original.substr(first + 1, second - first - 1), result.ts_ms)) {
        result.status = LogStatus::kDuplicate;
        result.original_conversation = original.substr(second + 1);
      }
    }
  } else if (reply != nullptr && reply_text(reply).starts_with("NOSCRIPT")) {
    link_.command({"SCRIPT", "LOAD", kAppendScript}, nullptr);
  }
  switch (result.status) {
    case LogStatus::kOk:
      ++stats_.messages;
      ++stats_.commits;
      break;
    case LogStatus::kDuplicate:
      ++stats_.duplicates;
      break;
    case LogStatus::kUnavailable:
      ++stats_.unavailable;
      ++stats_.errors;
      break;
  }
  ++stats_.batches;
  stats_.max_batch = std::max<uint64_t>(stats_.max_batch, 1);
  result.request = std::move(request);
  if (client_ != nullptr) client_->on_appended(result);
  note_completed();
}

void RedisRoomLog::note_completed() {
  if (refused_ && link_.pending() <= config_.queue_limit / 2) {
    refused_ = false;
    if (client_ != nullptr) client_->on_writable();
  }
}

Submit RedisRoomLog::history(std::string_view conversation, uint64_t before_seq, size_t limit, uint64_t cookie) {
  return submit_read(Read{ReadKind::kHistory, std::string(conversation), before_seq, limit, cookie, 0});
}

Submit RedisRoomLog::since(std::string_view conversation, uint64_t since_seq, size_t limit, uint64_t cookie) {
  return submit_read(Read{ReadKind::kSince, std::string(conversation), since_seq, limit, cookie, 0});
}

Submit RedisRoomLog::submit_read(Read read) {
  std::string end = "+";
  std::string start = "-";
  if (read.kind == ReadKind::kHistory && read.bound != 0) end = "(" + std::to_string(read.bound) + "-0";
  if (read.kind == ReadKind::kSince) start = "(" + std::to_string(read.bound) + "-0";
  std::string count = std::to_string(read.limit);
  std::string seq_key = key("seq", read.conversation);
  std::string log_key = key("log", read.conversation);
  auto shared = std::make_shared<Read>(std::move(read));
  RedisSubmit submit = link_.command({"EVALSHA", read_sha_, "2", seq_key, log_key, end, start, count},
                                     [this, shared](redisReply* reply) { on_read_reply(*shared, reply); });
  if (submit == RedisSubmit::kFull) {
    ++stats_.rejected_full;
    refused_ = true;
    return Submit::kFull;
  }
  if (submit == RedisSubmit::kDown) on_read_reply(*shared, nullptr);
  return Submit::kAccepted;
}

void RedisRoomLog::on_read_reply(Read& read, redisReply* reply) {
  ReadResult result;
  result.kind = read.kind;
  result.cookie = read.cookie;
  result.conversation = read.conversation;
  result.status = LogStatus::kUnavailable;
  if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
      reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[1]->type == REDIS_REPLY_ARRAY) {
    result.status = LogStatus::kOk;
    result.last_seq = static_cast<uint64_t>(reply->element[0]->integer);
    const redisReply* entries = reply->element[1];
    result.messages.reserve(entries->elements);
    for (size_t i = entries->elements; i-- > 0;) {  // newest first -> ascending
      StoredMessage message;
      if (parse_entry(entries->element[i], message, nullptr, nullptr)) result.messages.push_back(std::move(message));
    }
  } else if (reply != nullptr && reply_text(reply).starts_with("NOSCRIPT")) {
    link_.command({"SCRIPT", "LOAD", kReadScript}, nullptr);
  }
  if (result.status == LogStatus::kOk) {
    // A watched conversation: the read must hold exactly what was delivered before it (the
    // room_log.h contract), though the subscriber and this connection are not ordered. Newer
    // messages are cut (they come live); a read that ran before a delivered message is retried.
    auto found = watched_.find(read.conversation);
    if (found != watched_.end()) {
      uint64_t delivered = found->second.delivered;
      if (result.last_seq < delivered && ++read.attempts < kReadAttempts) {
        if (submit_read(std::move(read)) == Submit::kAccepted) return;
      }
      while (!result.messages.empty() && result.messages.back().seq > delivered) result.messages.pop_back();
      result.last_seq = std::min(result.last_seq, delivered);
    }
    // MAXLEN ~ trims whole stream nodes, so the stream may hold a little more than history_keep:
    // reads answer exactly the newest history_keep, as the other engines do.
    if (config_.history_keep != 0 && result.last_seq > config_.history_keep) {
      uint64_t oldest = result.last_seq - config_.history_keep + 1;
      auto kept = std::find_if(result.messages.begin(), result.messages.end(),
                               [oldest](const StoredMessage& message) { return message.seq >= oldest; });
      result.messages.erase(result.messages.begin(), kept);
    }
    // Expired entries are trimmed on the room's next append (or with the whole stream after a
    // silence of max age): until then reads leave them out, as the other engines' sweeps do.
    if (config_.max_age_ms != 0) {
      const uint64_t now = config_.wall_clock_ms != nullptr ? config_.wall_clock_ms() : room_log_realtime_ms();
      const uint64_t cutoff = now > config_.max_age_ms ? now - config_.max_age_ms : 0;
      auto young = std::find_if(result.messages.begin(), result.messages.end(),
                                [cutoff](const StoredMessage& message) { return message.ts_ms >= cutoff; });
      result.messages.erase(result.messages.begin(), young);
    }
    ++stats_.reads;
    note_last(read.conversation, result.last_seq);
  } else {
    ++stats_.unavailable;
  }
  if (result.kind == ReadKind::kSince) finish_since(result, read.bound);
  if (client_ != nullptr) client_->on_read(result);
  note_completed();
}

uint64_t RedisRoomLog::last_seq(std::string_view conversation) const {
  std::string name(conversation);
  if (auto found = watched_.find(name); found != watched_.end()) return found->second.delivered;
  auto known = known_last_.find(name);
  return known == known_last_.end() ? 0 : known->second;
}

void RedisRoomLog::note_last(std::string_view conversation, uint64_t seq) {
  // A cache, not the truth (other nodes append too): dropped whole when it grows past the bound.
  constexpr size_t kKnownLimit = 65536;
  if (known_last_.size() >= kKnownLimit) known_last_.clear();
  uint64_t& last = known_last_[std::string(conversation)];
  last = std::max(last, seq);
}

RoomLogStats RedisRoomLog::stats() const {
  RoomLogStats stats = stats_;
  stats.queue_depth = link_.pending();
  return stats;
}

void RedisRoomLog::render_engine_metrics(std::string& out) const {
  size_t buffered = 0;
  for (const auto& entry : watched_) buffered += entry.second.buffered.size();
  append_metric(out, "parley_redis_up", "gauge", "1 when both Redis connections (commands, pub/sub) are up",
                uint64_t{connected()});
  append_metric(out, "parley_redis_connects_total", "counter",
                "Redis connections established, both links (2 at start; more after losses)",
                link_.connects() + subscriber_.connects());
  append_metric(out, "parley_redis_disconnects_total", "counter", "established Redis connections lost, both links",
                link_.disconnects() + subscriber_.disconnects());
  append_metric(out, "parley_redis_watched_rooms", "gauge", "rooms this process is subscribed to (local members)",
                uint64_t{watched_.size()});
  append_metric(out, "parley_redis_watched_users", "gauge", "users whose DMs this process is subscribed to",
                uint64_t{users_.size()});
  append_metric(out, "parley_redis_gap_fills_total", "counter",
                "stream reads sent to fill a seq gap before delivering further (lost or late publishes)", gap_fills_);
  append_metric(out, "parley_redis_buffered_messages", "gauge", "live messages held back behind a seq gap",
                uint64_t{buffered});
}

void RedisRoomLog::watch(std::string_view conversation, uint64_t after_seq) {
  auto [it, inserted] = watched_.try_emplace(std::string(conversation));
  if (!inserted) return;
  it->second.delivered = after_seq;
  // Without a connection, on_up subscribes everything watched.
  subscriber_.subscribe(key("c", conversation));
}

void RedisRoomLog::unwatch(std::string_view conversation) {
  if (watched_.erase(std::string(conversation)) == 0) return;
  subscriber_.unsubscribe(key("c", conversation));
}

void RedisRoomLog::watch_user(std::string_view name) {
  std::string lower = user_key(name);
  if (users_.insert(lower).second) subscriber_.subscribe(key("u", lower));
}

void RedisRoomLog::unwatch_user(std::string_view name) {
  std::string lower = user_key(name);
  if (users_.erase(lower) != 0) subscriber_.unsubscribe(key("u", lower));
}

void RedisRoomLog::resubscribe() {
  for (auto& [conversation, watched] : watched_) subscriber_.subscribe(key("c", conversation));
  for (const std::string& user : users_) subscriber_.subscribe(key("u", user));
}

void RedisRoomLog::on_subscribed(std::string_view channel) {
  // From now on every message of the room arrives live; what was committed before (while the
  // subscription was being set up, or while Redis was away) is read from the stream.
  std::string_view prefix = std::string_view(prefix_);
  if (!channel.starts_with(prefix) || !channel.substr(prefix.size()).starts_with("c:")) return;
  catch_up(std::string(channel.substr(prefix.size() + 2)), 0);
}

void RedisRoomLog::catch_up(const std::string& conversation, int attempt) {
  // Retried while Redis answers with an error (LOADING: a restarted Redis replays its AOF
  // before it serves data); a bounded number of round trips, then the next live message's
  // seq jump triggers the fill instead.
  constexpr int kAttempts = 500;
  auto watched_now = watched_.find(conversation);
  if (watched_now == watched_.end()) return;
  // Seqs delivered before the GET was sent were committed before it runs: a smaller answer
  // means Redis lost data. A smaller answer than what was delivered meanwhile is only the race
  // between this connection and the subscriber's (the GET ran before a message it then saw).
  uint64_t delivered_before = watched_now->second.delivered;
  link_.command({"GET", key("seq", conversation)}, [this, conversation, attempt, delivered_before](redisReply* reply) {
    auto found = watched_.find(conversation);
    if (found == watched_.end() || reply == nullptr) return;
    if (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL) {
      if (attempt + 1 < kAttempts) catch_up(conversation, attempt + 1);
      return;
    }
    uint64_t last = 0;
    if (reply->type == REDIS_REPLY_STRING) parse_u64(reply_text(reply), last);
    Watched& watched = found->second;
    if (last < delivered_before) {
      // Redis lost seqs (restarted without AOF, or flushed): follow its numbering from here.
      std::fprintf(stderr, "parleyd: redis: room %s restarts at seq %llu (was %llu): Redis lost data\n",
                   conversation.c_str(), static_cast<unsigned long long>(last),
                   static_cast<unsigned long long>(watched.delivered));
      watched.delivered = last;
      watched.buffered.clear();
    } else if (last > watched.delivered) {
      fill(conversation, last);
    }
  });
}

bool RedisRoomLog::parse_published(std::string_view payload, Published& out) {
  // "seq ts node cookie len(sender) len(client id) len(recipient) len(conversation)\n" + fields + text
  size_t newline = payload.find('\n');
  if (newline == std::string_view::npos) return false;
  std::string_view head = payload.substr(0, newline);
  uint64_t numbers[8] = {};
  std::string_view node;
  for (int i = 0; i < 8; ++i) {
    size_t space = head.find(' ');
    std::string_view field = head.substr(0, space);
    if (i == 2) {
      node = field;
    } else if (!parse_u64(field, numbers[i])) {
      return false;
    }
    if (space == std::string_view::npos) {
      if (i != 7) return false;
      break;
    }
    head.remove_prefix(space + 1);
  }
  std::string_view body = payload.substr(newline + 1);
  uint64_t fixed = numbers[4] + numbers[5] + numbers[6] + numbers[7];
  if (fixed > body.size()) return false;
  out.seq = numbers[0];
  out.ts_ms = numbers[1];
  out.node = node;
  out.cookie = numbers[3];
  out.sender = body.substr(0, numbers[4]);
  body.remove_prefix(numbers[4]);
  out.client_id = body.substr(0, numbers[5]);
  body.remove_prefix(numbers[5]);
  out.recipient = body.substr(0, numbers[6]);
  body.remove_prefix(numbers[6]);
  out.conversation = body.substr(0, numbers[7]);
  body.remove_prefix(numbers[7]);
  out.text = body;
  return out.seq != 0;
}

void RedisRoomLog::on_message(std::string_view channel, std::string_view payload) {
  Published message;
  if (!parse_published(payload, message)) return;
  uint64_t origin = message.node == node_id_ ? message.cookie : 0;
  std::string_view prefix(prefix_);
  if (channel.starts_with(prefix) && channel.substr(prefix.size()).starts_with("u:")) {
    // A DM to a user connected here. DMs are not gap-filled: a per-user channel mixes
    // conversations; a DM published while this node's subscriber was down is in the DM history.
    if (client_ == nullptr) return;
    DeliveredMessage delivered{message.conversation, message.seq, message.ts_ms, message.sender,
                               message.text, message.recipient, origin};
    client_->on_delivered(delivered);
    return;
  }
  auto found = watched_.find(std::string(message.conversation));
  if (found == watched_.end()) return;
  Watched& watched = found->second;
  if (message.seq <= watched.delivered) return;  // already delivered (from a fill)
  if (message.seq == watched.delivered + 1 && !watched.filling && watched.buffered.empty()) {
    deliver(message.conversation, watched, message.seq, message.ts_ms, message.sender, message.text, origin);
    return;
  }
  // A seq jump: hold this one and read the gap from the stream before delivering further.
  watched.buffered.try_emplace(message.seq,
                               Buffered{message.ts_ms, origin, std::string(message.sender), std::string(message.text)});
  if (!watched.filling) fill(std::string(message.conversation), message.seq - 1);
}

void RedisRoomLog::deliver(std::string_view conversation, Watched& watched, uint64_t seq, uint64_t ts_ms,
                           std::string_view sender, std::string_view text, uint64_t origin_cookie) {
  watched.delivered = seq;
  if (client_ == nullptr) return;
  DeliveredMessage message{conversation, seq, ts_ms, sender, text, {}, origin_cookie};
  client_->on_delivered(message);
}

void RedisRoomLog::drain_buffered(std::string_view conversation, Watched& watched) {
  while (!watched.buffered.empty() && watched.buffered.begin()->first <= watched.delivered + 1) {
    auto node = watched.buffered.extract(watched.buffered.begin());
    if (node.key() <= watched.delivered) continue;
    Buffered& held = node.mapped();
    deliver(conversation, watched, node.key(), held.ts_ms, held.sender, held.text, held.origin_cookie);
  }
}

void RedisRoomLog::fill(const std::string& conversation, uint64_t up_to) {
  auto found = watched_.find(conversation);
  if (found == watched_.end() || found->second.filling || up_to <= found->second.delivered) return;
  found->second.filling = true;
  ++gap_fills_;
  std::string start = "(" + std::to_string(found->second.delivered) + "-0";
  std::string end = std::to_string(up_to) + "-0";
  RedisSubmit submit = link_.command(
      {"EVALSHA", read_sha_, "2", key("seq", conversation), key("log", conversation), end, start, "0"},
      [this, conversation](redisReply* reply) {
        auto again = watched_.find(conversation);
        if (again == watched_.end()) return;
        Watched& watched = again->second;
        watched.filling = false;
        if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
            reply->element[1]->type != REDIS_REPLY_ARRAY) {
          return;  // Redis went away: the resubscription after it returns fills again
        }
        const redisReply* entries = reply->element[1];
        for (size_t i = entries->elements; i-- > 0;) {
          StoredMessage message;
          std::string_view node;
          uint64_t cookie = 0;
          if (!parse_entry(entries->element[i], message, &node, &cookie) || message.seq <= watched.delivered) continue;
          deliver(conversation, watched, message.seq, message.ts_ms, message.sender, message.text,
                  node == node_id_ ? cookie : 0);
        }
        // What the stream no longer holds (trimmed past MAXLEN) cannot be delivered: skip it.
        if (!watched.buffered.empty() && watched.buffered.begin()->first > watched.delivered + 1) {
          watched.delivered = watched.buffered.begin()->first - 1;
        }
        drain_buffered(conversation, watched);
      });
  if (submit != RedisSubmit::kQueued) found->second.filling = false;
}

}  // namespace chat
