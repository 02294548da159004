#include "chat/cluster/redis_link.h"

#include <openssl/evp.h>

#include <hiredis/sds.h>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <random>

namespace chat {

namespace {

constexpr uint32_t kTimerTag = 0;

bool parse_int(std::string_view text, int low, int high, int& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && out >= low && out <= high;
}

uint64_t random_u64() {
  static thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine();
}

}  // namespace

std::string script_sha1(std::string_view script) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(script.data(), script.size(), digest, &length, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

std::string_view reply_text(const redisReply* reply) {
  if (reply == nullptr || reply->str == nullptr) return {};
  if (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_STATUS && reply->type != REDIS_REPLY_ERROR) {
    return {};
  }
  return {reply->str, reply->len};
}

std::string redis_key_prefix(const RedisEndpoint& endpoint) {
  return endpoint.db == 0 ? std::string("parley:") : "parley:" + std::to_string(endpoint.db) + ":";
}

bool parse_redis_url(std::string_view url, RedisEndpoint& endpoint, std::string& error) {
  constexpr std::string_view kScheme = "redis://";
  error.clear();
  if (!url.starts_with(kScheme)) {
    error = "redis URL must look like redis://HOST:PORT[/DB] (got \"" + std::string(url) + "\")";
    return false;
  }
  std::string_view rest = url.substr(kScheme.size());
  if (rest.find('@') != std::string_view::npos) {
    error = "redis URL must not hold a password; set " + std::string(kRedisPasswordEnv) + " instead";
    return false;
  }
  std::string_view authority = rest.substr(0, rest.find('/'));
  std::string_view path = authority.size() < rest.size() ? rest.substr(authority.size() + 1) : std::string_view();
  RedisEndpoint parsed;
  std::string_view port_text;
  if (authority.starts_with('[')) {  // RFC 3986 3.2.2: an IPv6 literal in brackets
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "redis URL: unterminated [IPv6] host";
      return false;
    }
    parsed.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') {
      error = "redis URL: junk after the [IPv6] host";
      return false;
    }
    if (!after.empty()) port_text = after.substr(1);
  } else {
    size_t colon = authority.rfind(':');
    parsed.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (parsed.host.empty()) {
    error = "redis URL has no host";
    return false;
  }
  if (!port_text.empty() || authority.ends_with(':')) {
    if (!parse_int(port_text, 1, 65535, parsed.port)) {
      error = "redis URL: bad port \"" + std::string(port_text) + "\"";
      return false;
    }
  }
  if (!path.empty() && !parse_int(path, 0, 1 << 20, parsed.db)) {
    error = "redis URL: bad database number \"" + std::string(path) + "\"";
    return false;
  }
  parsed.password = std::move(endpoint.password);  // from the environment, set by the caller
  endpoint = std::move(parsed);
  return true;
}

bool resolve_redis_endpoint(RedisEndpoint& endpoint, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(endpoint.host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    error = "redis " + endpoint.host + ": " + gai_strerror(rc);
    return false;
  }
  char text[NI_MAXHOST];
  rc = getnameinfo(found->ai_addr, found->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST);
  freeaddrinfo(found);
  if (rc != 0) {
    error = "redis " + endpoint.host + ": " + gai_strerror(rc);
    return false;
  }
  endpoint.host = text;
  return true;
}

bool probe_redis(const RedisEndpoint& endpoint, int timeout_ms, std::string& error) {
  std::string where = "redis " + endpoint.host + ":" + std::to_string(endpoint.port) + ": ";
  timeval timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  redisContext* context = redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, timeout);
  if (context == nullptr || context->err != 0) {
    error = where + (context != nullptr ? context->errstr : "out of memory");
    if (context != nullptr) redisFree(context);
    return false;
  }
  redisSetTimeout(context, timeout);
  auto run = [&](std::vector<std::string> args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data()));
    if (reply == nullptr) {
      error = where + context->errstr;
      return false;
    }
    bool ok = reply->type != REDIS_REPLY_ERROR;
    if (!ok) error = where + std::string(reply_text(reply));
    freeReplyObject(reply);
    return ok;
  };
  bool ok = (endpoint.password.empty() || run({"AUTH", endpoint.password})) &&
            (endpoint.db == 0 || run({"SELECT", std::to_string(endpoint.db)})) && run({"PING"});
  redisFree(context);
  return ok;
}

RedisLink::RedisLink(reactor::EventLoop& loop, RedisLinkConfig config)
    : loop_(loop), config_(std::move(config)), backoff_(config_.backoff, random_u64),
      alive_(std::make_shared<RedisLink*>(this)) {
  handler_id_ = loop_.add_handler(this);
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ >= 0 && handler_id_ >= 0) loop_.watch(timer_fd_, handler_id_, kTimerTag, EPOLLIN | EPOLLET);
  std::weak_ptr<RedisLink*> guard = alive_;
  loop_.add_before_sleep([guard] {
    if (auto link = guard.lock()) (*link)->flush();
  });
}

RedisLink::~RedisLink() {
  closing_ = true;
  // Frees the context: every pending callback gets null (its owner must already be gone or
  // expecting it), then hook_cleanup forgets the context.
  if (context_ != nullptr) redisAsyncFree(context_);
  if (timer_fd_ >= 0) close(timer_fd_);
  alive_.reset();
}

void RedisLink::start() {
  if (context_ == nullptr && !reconnect_armed_) connect();
}

void RedisLink::connect() {
  reconnect_armed_ = false;
  if (closing_ || context_ != nullptr) return;
  ++attempts_;
  redisAsyncContext* context = redisAsyncConnect(config_.endpoint.host.c_str(), config_.endpoint.port);
  if (context == nullptr || context->err != 0) {
    if (context != nullptr) redisAsyncFree(context);
    schedule_reconnect();
    return;
  }
  context_ = context;
  context->data = this;
  context->ev.data = this;
  context->ev.addRead = hook_add_read;
  context->ev.delRead = hook_del_read;
  context->ev.addWrite = hook_add_write;
  context->ev.delWrite = hook_del_write;
  context->ev.cleanup = hook_cleanup;
  redisAsyncSetConnectCallback(context, on_connect_cb);
  redisAsyncSetDisconnectCallback(context, on_disconnect_cb);
  generation_ = generation_ % reactor::EventLoop::kMaxTag + 1;  // never kTimerTag
  // Registered once for both directions: the kernel reports EPOLLOUT when the non-blocking
  // connect completes (or fails), which is when hiredis wants its first write event.
  if (loop_.watch(context->c.fd, handler_id_, generation_) != 0) {
    redisAsyncFree(context);  // hook_cleanup schedules the next attempt
    return;
  }
  send_preamble();
}

void RedisLink::send_preamble() {
  // Queued ahead of anything the owner sends, so every later command runs authenticated and on
  // the right database. A failure drops the connection: the next attempt tries again.
  auto check = [this](redisReply* reply) {
    if (reply != nullptr && reply->type == REDIS_REPLY_ERROR) {
      std::fprintf(stderr, "parleyd: redis %s:%d: %.*s\n", config_.endpoint.host.c_str(), config_.endpoint.port,
                   static_cast<int>(reply->len), reply->str);
      if (context_ != nullptr) redisAsyncDisconnect(context_);
    }
  };
  if (!config_.endpoint.password.empty()) command({"AUTH", config_.endpoint.password}, check);
  if (config_.endpoint.db != 0) command({"SELECT", std::to_string(config_.endpoint.db)}, check);
  for (const std::vector<std::string>& preamble : config_.preamble) {
    std::vector<std::string_view> args(preamble.begin(), preamble.end());
    command(args, check);
  }
}

void RedisLink::schedule_reconnect() {
  if (closing_ || reconnect_armed_ || timer_fd_ < 0) return;
  std::chrono::milliseconds delay = backoff_.next_delay().value_or(config_.backoff.cap);
  if (delay.count() <= 0) delay = std::chrono::milliseconds(1);  // 0 would disarm the timerfd
  itimerspec spec{};
  spec.it_value.tv_sec = delay.count() / 1000;
  spec.it_value.tv_nsec = (delay.count() % 1000) * 1000000;
  timerfd_settime(timer_fd_, 0, &spec, nullptr);
  reconnect_armed_ = true;
}

RedisSubmit RedisLink::command(std::initializer_list<std::string_view> args, ReplyFn on_reply) {
  return command(std::vector<std::string_view>(args), std::move(on_reply));
}

RedisSubmit RedisLink::command(const std::vector<std::string_view>& args, ReplyFn on_reply) {
  const char* argv[32];
  size_t lengths[32];
  std::vector<const char*> argv_big;
  std::vector<size_t> lengths_big;
  const char** argv_used = argv;
  size_t* lengths_used = lengths;
  if (args.size() > 32) {
    argv_big.resize(args.size());
    lengths_big.resize(args.size());
    argv_used = argv_big.data();
    lengths_used = lengths_big.data();
  }
  for (size_t i = 0; i < args.size(); ++i) {
    argv_used[i] = args.begin()[i].data();
    lengths_used[i] = args.begin()[i].size();
  }
  return send(static_cast<int>(args.size()), argv_used, lengths_used, std::move(on_reply));
}

RedisSubmit RedisLink::send(int argc, const char** argv, const size_t* lengths, ReplyFn on_reply) {
  if (context_ == nullptr) return RedisSubmit::kDown;
  if (pending_.size() >= config_.max_pending) return RedisSubmit::kFull;
  if (redisAsyncCommandArgv(context_, on_reply_cb, this, argc, argv, lengths) != REDIS_OK) {
    return RedisSubmit::kDown;  // the context is disconnecting or being freed
  }
  pending_.push_back(std::move(on_reply));
  return RedisSubmit::kQueued;
}

bool RedisLink::subscribe(std::string_view channel) {
  if (context_ == nullptr || !connected_) return false;
  const char* argv[2] = {"SUBSCRIBE", channel.data()};
  size_t lengths[2] = {9, channel.size()};
  return redisAsyncCommandArgv(context_, on_sub_cb, this, 2, argv, lengths) == REDIS_OK;
}

bool RedisLink::unsubscribe(std::string_view channel) {
  if (context_ == nullptr || !connected_) return false;
  const char* argv[2] = {"UNSUBSCRIBE", channel.data()};
  size_t lengths[2] = {11, channel.size()};
  return redisAsyncCommandArgv(context_, on_sub_cb, this, 2, argv, lengths) == REDIS_OK;
}

void RedisLink::on_event(int fd, uint32_t tag, uint32_t events) {
  if (tag == kTimerTag) {
    uint64_t expirations = 0;
    while (read(timer_fd_, &expirations, sizeof expirations) > 0) {
    }
    if (reconnect_armed_) connect();
    return;
  }
  // A stale event for an earlier connection's fd (closed, maybe reused) is ignored.
  if (context_ == nullptr || tag != generation_ || fd != context_->c.fd) return;
  wake_pending_ = false;
  if (connected_ && want_write_) flush();
  if (context_ == nullptr) return;
  if ((events & EPOLLOUT) != 0 || !connected_) {
    // Before the connect callback, any event means the non-blocking connect finished: hiredis
    // checks SO_ERROR in its write handler and calls on_connect_cb either way.
    want_write_ = true;
    if (connected_) {
      flush();
    } else {
      redisAsyncHandleWrite(context_);
      if (context_ != nullptr && connected_) flush();
    }
    if (context_ == nullptr) return;
  }
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0 && connected_) drain_read(fd);
}

void RedisLink::drain_read(int fd) {
  // Edge-triggered: the kernel will not report bytes that are already waiting, so read until
  // none are (hiredis reads 16 KiB per call), or until the budget and then ask to be called again.
  for (uint32_t round = 0; round < config_.read_budget; ++round) {
    redisAsyncHandleRead(context_);
    if (context_ == nullptr) return;  // the connection closed (EOF or error) and was freed
    int waiting = 0;
    if (ioctl(fd, FIONREAD, &waiting) != 0 || waiting <= 0) return;
  }
  loop_.mark_ready(fd, handler_id_, generation_);
}

void RedisLink::flush() {
  // One write per loop iteration for everything queued during it (pipelining); EAGAIN leaves
  // the rest for EPOLLOUT.
  while (context_ != nullptr && connected_ && want_write_) {
    size_t before = sdslen(context_->c.obuf);
    if (before == 0) {
      want_write_ = false;
      return;
    }
    redisAsyncHandleWrite(context_);
    if (context_ == nullptr) return;
    size_t after = sdslen(context_->c.obuf);
    if (after == 0 || after == before) return;  // all written, or the socket is full
  }
}

void RedisLink::hook_add_read(void*) {}  // always registered for reads

void RedisLink::hook_del_read(void*) {}

void RedisLink::hook_add_write(void* data) {
  auto* link = static_cast<RedisLink*>(data);
  link->want_write_ = true;
  // A command issued after this iteration's flush (from another before-sleep hook, e.g. a
  // connection closed there) would wait for the next event, which may never come: ask the
  // loop for one more pass over this fd (an idle loop does not sleep while fds are ready).
  if (link->connected_ && !link->wake_pending_ && link->context_ != nullptr) {
    link->wake_pending_ = true;
    link->loop_.mark_ready(link->context_->c.fd, link->handler_id_, link->generation_);
  }
}

void RedisLink::hook_del_write(void* data) { static_cast<RedisLink*>(data)->want_write_ = false; }

void RedisLink::hook_cleanup(void* data) {
  // hiredis is freeing the context (EOF, error, failed connect or our destructor); every pending
  // callback has had its null reply. Closing the fd removes it from epoll.
  auto* link = static_cast<RedisLink*>(data);
  link->context_ = nullptr;
  link->want_write_ = false;
  // Whatever hiredis has not answered with null yet is answered here, in order; its own later
  // null calls then find the FIFO empty.
  std::deque<ReplyFn> unanswered = std::move(link->pending_);
  link->pending_.clear();
  for (ReplyFn& fn : unanswered) {
    if (fn) fn(nullptr);
  }
  bool was_connected = link->connected_;
  link->connected_ = false;
  if (was_connected) {
    ++link->disconnects_;
    auto now = std::chrono::milliseconds(link->loop_.now_ms());
    link->backoff_.on_disconnected(now);
  }
  if (link->closing_) return;
  link->schedule_reconnect();
  if (was_connected && link->on_down_) link->on_down_();
}

void RedisLink::on_connect_cb(const redisAsyncContext* context, int status) {
  auto* link = static_cast<RedisLink*>(context->data);
  if (status != REDIS_OK) return;  // hiredis frees the context next: hook_cleanup retries
  link->connected_ = true;
  ++link->connects_;
  link->backoff_.on_connected(std::chrono::milliseconds(link->loop_.now_ms()));
  if (link->on_up_) link->on_up_();
}

void RedisLink::on_disconnect_cb(const redisAsyncContext*, int) {}  // handled in hook_cleanup

void RedisLink::on_reply_cb(redisAsyncContext*, void* reply, void* privdata) {
  auto* link = static_cast<RedisLink*>(privdata);
  if (link->pending_.empty()) return;  // cleared by hook_cleanup
  ReplyFn fn = std::move(link->pending_.front());
  link->pending_.pop_front();
  if (fn) fn(static_cast<redisReply*>(reply));
}

void RedisLink::on_sub_cb(redisAsyncContext*, void* reply, void* privdata) {
  auto* link = static_cast<RedisLink*>(privdata);
  auto* r = static_cast<redisReply*>(reply);
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
  std::string_view kind = reply_text(r->element[0]);
  std::string_view channel = reply_text(r->element[1]);
  if (kind == "message") {
    if (link->on_message_) link->on_message_(channel, reply_text(r->element[2]));
  } else if (kind == "subscribe") {
    if (link->on_subscribed_) link->on_subscribed_(channel);
  }
}

}  // namespace chat
