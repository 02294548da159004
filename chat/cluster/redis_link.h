#pragma once
// One connection to Redis driven by our reactor (issue 15, DESIGN.md "Where chat state lives"):
// hiredis's async API (0.14) with its event hooks mapped onto one edge-triggered registration,
// reconnect with backoff, and a bounded queue of commands awaiting their reply.
//
// Edge-triggered mapping: hiredis asks for read/write interest with addRead/delRead/addWrite/
// delWrite, written for level-triggered loops. Here the socket is registered once, IN|OUT|RDHUP|
// ET, when the link connects; the hooks only set flags. A read event drains the socket (hiredis
// reads at most 16 KiB per redisAsyncHandleRead, so we call it while FIONREAD says bytes are
// waiting, up to a budget, then mark_ready); writes are flushed in a before-sleep hook, so every
// command issued during one loop iteration goes out in one write (pipelining), and whatever the
// kernel did not take is written on the next EPOLLOUT.
//
// Queue policy: at most `max_pending` commands await a reply; past that command() returns kFull
// and queues nothing (the caller answers `unavailable`). While there is no connection (Redis away,
// waiting for the next attempt) command() returns kDown: nothing is buffered across an outage, so
// a caller never sees a command run minutes after it gave up on it. Commands issued while a
// connection is being set up are written once it is up (hiredis buffers them).
//
// Usage (loop thread only):
//   RedisLink link(loop, config);
//   link.set_on_up([&] { /* (re)subscribe, reload state */ });
//   link.start();
//   link.command({"INCR", "k"}, [](redisReply* reply) { /* null: the connection was lost */ });
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "reactor/event_loop.h"
#include "tools/backoff.h"

namespace chat {

// Where Redis is: `redis://HOST:PORT[/DB]`; the password comes from the environment, never argv.
struct RedisEndpoint {
  std::string host = "127.0.0.1";  // an IPv4/IPv6 literal after resolve_redis_endpoint()
  int port = 6379;
  int db = 0;
  std::string password;  // empty: no AUTH
};

// The prefix of every key and channel parley uses on `endpoint`: "parley:" on DB 0,
// "parley:<db>:" on another. Keys are per DB already, but pub/sub channels are global to the
// server (a PUBLISH on DB 2 reaches subscribers on DB 0), so the DB goes into the name: chats
// sharing one Redis under different DB numbers stay apart.
std::string redis_key_prefix(const RedisEndpoint& endpoint);

// Parses `redis://HOST:PORT[/DB]` (PORT defaults to 6379, DB to 0; IPv6 as [::1]); false with
// `error` set to one line on anything else (other schemes, user info, a bad port or DB).
bool parse_redis_url(std::string_view url, RedisEndpoint& endpoint, std::string& error);

// Replaces endpoint.host by a numeric address (getaddrinfo, blocking: call at start-up, never on
// the loop) so reconnects never resolve names on the reactor thread; false with `error` set.
bool resolve_redis_endpoint(RedisEndpoint& endpoint, std::string& error);

// The environment variable holding the Redis password (never a command-line argument).
inline constexpr const char* kRedisPasswordEnv = "PARLEY_REDIS_PASSWORD";

// A blocking check at start-up: connects, AUTHs, SELECTs and PINGs within `timeout_ms`; false
// with `error` set to one line ("redis 127.0.0.1:6380: Connection refused").
bool probe_redis(const RedisEndpoint& endpoint, int timeout_ms, std::string& error);

struct RedisLinkConfig {
  RedisEndpoint endpoint;
  // Commands sent and not yet answered, at most; past it command() returns kFull.
  size_t max_pending = 65536;
  // Delays between connection attempts (full jitter); max_retries is effectively unbounded: a
  // server keeps trying for as long as Redis is away.
  tools::cli::BackoffPolicy backoff{std::chrono::milliseconds(100), std::chrono::milliseconds(3000),
                                    UINT32_MAX, std::chrono::milliseconds(2000)};
  // Commands sent on every new connection right after AUTH/SELECT, ahead of anything queued
  // meanwhile (e.g. SCRIPT LOAD: a restarted Redis has an empty script cache). Replies ignored.
  std::vector<std::vector<std::string>> preamble;
  // redisAsyncHandleRead calls per read event before the fd goes on the ready list.
  uint32_t read_budget = 64;
};

// What command() did.
enum class RedisSubmit : uint8_t {
  kQueued,  // the callback will be called exactly once (with null if the connection drops)
  kFull,    // max_pending commands await replies: nothing queued, no callback
  kDown,    // no connection: nothing queued, no callback
};

class RedisLink final : public reactor::EventHandler {
 public:
  // A reply; null when the connection was lost before it came (the command may or may not have
  // run). Valid only during the call.
  using ReplyFn = std::function<void(redisReply* reply)>;
  // A pub/sub message on `channel` (subscriber links).
  using MessageFn = std::function<void(std::string_view channel, std::string_view payload)>;

  // `loop` must be open and outlive the link.
  RedisLink(reactor::EventLoop& loop, RedisLinkConfig config);
  ~RedisLink() override;
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  // Called each time a connection is up (AUTH and SELECT sent ahead of anything else).
  void set_on_up(std::function<void()> on_up) { on_up_ = std::move(on_up); }
  // Called each time an established connection is lost (after every pending callback got null).
  void set_on_down(std::function<void()> on_down) { on_down_ = std::move(on_down); }
  // Pub/sub messages; also puts the link in subscriber mode (use subscribe()/unsubscribe()).
  void set_on_message(MessageFn on_message) { on_message_ = std::move(on_message); }
  // Confirmation that `channel` is subscribed (messages published from now on will arrive).
  void set_on_subscribed(std::function<void(std::string_view channel)> fn) { on_subscribed_ = std::move(fn); }

  // Starts the first connection attempt (non-blocking).
  void start();

  // Sends one command (binary-safe arguments). See RedisSubmit.
  RedisSubmit command(std::initializer_list<std::string_view> args, ReplyFn on_reply);
  RedisSubmit command(const std::vector<std::string_view>& args, ReplyFn on_reply);

  // Subscriber mode: SUBSCRIBE / UNSUBSCRIBE `channel`; false when there is no connection (the
  // owner subscribes again from on_up).
  bool subscribe(std::string_view channel);
  bool unsubscribe(std::string_view channel);

  // True between the connect callback and the loss of the connection.
  bool connected() const { return connected_; }
  // Commands awaiting replies.
  size_t pending() const { return pending_.size(); }
  // Connections established and lost since start, and attempts made.
  uint64_t connects() const { return connects_; }
  uint64_t disconnects() const { return disconnects_; }
  uint64_t attempts() const { return attempts_; }

  void on_event(int fd, uint32_t tag, uint32_t events) override;

 private:
  static void hook_add_read(void* data);
  static void hook_del_read(void* data);
  static void hook_add_write(void* data);
  static void hook_del_write(void* data);
  static void hook_cleanup(void* data);
  static void on_connect_cb(const redisAsyncContext* context, int status);
  static void on_disconnect_cb(const redisAsyncContext* context, int status);
  static void on_reply_cb(redisAsyncContext* context, void* reply, void* privdata);
  static void on_sub_cb(redisAsyncContext* context, void* reply, void* privdata);

  void connect();
  void schedule_reconnect();
  void flush();
  void drain_read(int fd);
  void send_preamble();
  RedisSubmit send(int argc, const char** argv, const size_t* lengths, ReplyFn on_reply);

  reactor::EventLoop& loop_;
  RedisLinkConfig config_;
  int handler_id_ = -1;
  int timer_fd_ = -1;
  redisAsyncContext* context_ = nullptr;
  uint32_t generation_ = 0;  // the tag of the current socket's registration (never the timer's 0)
  bool connected_ = false;
  bool want_write_ = false;
  bool wake_pending_ = false;  // mark_ready asked for a pass to flush commands issued late
  bool closing_ = false;
  bool reconnect_armed_ = false;
  std::deque<ReplyFn> pending_;  // replies to ordinary commands come in order: one FIFO
  tools::cli::Backoff backoff_;
  std::shared_ptr<RedisLink*> alive_;  // the before-sleep hook's guard (the loop cannot drop hooks)
  std::function<void()> on_up_;
  std::function<void()> on_down_;
  MessageFn on_message_;
  std::function<void(std::string_view)> on_subscribed_;
  uint64_t connects_ = 0;
  uint64_t disconnects_ = 0;
  uint64_t attempts_ = 0;
};

// The SHA1 of a Lua script in hex: its name for EVALSHA (the preamble SCRIPT LOADs the text).
std::string script_sha1(std::string_view script);

// The text of a reply of type string/status/error (empty for others).
std::string_view reply_text(const redisReply* reply);

}  // namespace chat
