#pragma once
// parley::Server's hidden state (pimpl), shared by parley.cpp (lifecycle, hooks),
// parley_config.cpp (Config checks and translation) and parley_host.cpp (host-side calls).
// Not part of the embedding API: parley.h includes none of this.
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "chat/chat_app.h"
#include "chat/parley.h"
#include "chat/parleyd_options.h"
#include "protocol/ws_server.h"
#include "chat/held_session_expiry.h"
#include "reactor/event_loop.h"

namespace reactor {
class TlsContext;
}

namespace parley {

// `config` as parleyd's options (the fields parleyd has; the rest at parleyd's defaults), so
// that parleyd's option table can check it and tests can compare the two.
chat::ParleydOptions parleyd_view(const Config& config);
// Checks `config` with parleyd's option table (ranges, choices, checks) and the rules parleyd
// has beside it; false with a one-line `error` naming the option.
bool validate_config(const Config& config, std::string& error);
// The WebSocket server's settings for `config` (validated).
protocol::WsServerConfig ws_server_config(const Config& config);
// The chat application's settings for `config` (validated), reading the token secret file and
// parsing the Origin list; false with `error` on failure.
bool chat_config(const Config& config, chat::ChatConfig& out, std::string& error);

struct Server::Impl final : reactor::EventHandler, chat::ChatHooks {
  struct Post {
    std::string room;
    std::string text;
    std::string from;
  };

  Impl(Config c, Hooks h);
  ~Impl() override;

  // chat::ChatHooks: adapt the std::function hooks, containing their exceptions.
  void authorize(protocol::ConnectionId, const protocol::HttpRequest& request, chat::ChatAuthDecision& decision) override;
  bool allow_message(const chat::ChatMessageEvent& event) override;
  bool on_custom(protocol::ConnectionId id, std::string_view user, std::string_view type,
                 std::string_view json) override;
  bool allow_name(protocol::ConnectionId, std::string_view name, std::string& reason) override;
  void on_connect(protocol::ConnectionId id, std::string_view user) override;
  void on_disconnect(protocol::ConnectionId id, std::string_view user, uint16_t code) override;
  void on_join(protocol::ConnectionId id, std::string_view user, std::string_view room) override;
  void on_leave(protocol::ConnectionId id, std::string_view user, std::string_view room) override;

  // The eventfd: stop requests, publishes and host calls from other threads.
  void on_event(int fd, uint32_t, uint32_t) override;
  // Runs at the end of every iteration, after WsServer has freed closed connections.
  void drain_check();
  void wake();
  bool on_loop_thread() const { return running.load() && std::this_thread::get_id() == loop_thread.load(); }
  int start();
  int try_start();
  // Runs every queued task on this (the loop) thread.
  void run_tasks();
  // Runs `task` on the loop thread: at once from it, else queued; false when not running.
  bool post(std::function<void()> task);
  // Runs `fn` on the loop thread and returns its result, or `fallback` when not running.
  template <typename R, typename Fn>
  R call(Fn fn, R fallback);

  Config config;
  Hooks hooks;
  reactor::EventLoop loop;
  std::unique_ptr<reactor::TlsContext> tls;
  std::unique_ptr<protocol::WsServer> server;
  std::unique_ptr<chat::WsServerTransport> transport;
  std::unique_ptr<chat::RoomLog> log;  // null: memory only
  std::unique_ptr<chat::ChatApp> app;
  std::unique_ptr<chat::HeldSessionExpiry> held_expiry;  // after app: it calls into it
  std::string error;  // why start() failed, when known
  bool started = false;
  int start_error = 0;
  bool draining = false;  // stop() seen: closing every connection; loop thread only
  uint64_t drain_deadline_ms = 0;
  std::atomic<int> wake_fd{-1};
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> running{false};
  std::atomic<std::thread::id> loop_thread{};
  std::mutex mutex;
  std::vector<Post> queue;                   // publishes from other threads, guarded by mutex
  std::vector<std::function<void()>> tasks;  // host calls from other threads, guarded by mutex
  bool accepting_tasks = false;              // run() is between start and its last drain; mutex
};

}  // namespace parley
