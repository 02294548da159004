#include "chat/parley.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "chat/chat_app.h"
#include "chat/chat_codec.h"
#include "protocol/close_code.h"
#include "protocol/http_request.h"
#include "protocol/utf8.h"
#include "protocol/ws_server.h"
#include "reactor/event_loop.h"
#include "reactor/socket_ops.h"

namespace parley {

std::string_view Handshake::path() const { return request_.path; }

std::string_view Handshake::query() const { return request_.query; }

std::string_view Handshake::header(std::string_view name) const { return request_.header(name); }

std::string_view Handshake::query_param(std::string_view name) const {
  std::string_view rest = request_.query;
  while (!rest.empty()) {
    size_t end = rest.find('&');
    std::string_view pair = rest.substr(0, end);
    size_t equals = pair.find('=');
    if (pair.substr(0, equals) == name) return equals == std::string_view::npos ? std::string_view() : pair.substr(equals + 1);
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return {};
}

struct Server::Impl final : reactor::EventHandler, chat::ChatHooks {
  struct Post {
    std::string room;
    std::string text;
    std::string from;
  };

  Impl(Config c, Hooks h) : config(std::move(c)), hooks(std::move(h)) {}

  ~Impl() override {
    // The app is referenced by the server's routes: the server goes first.
    server.reset();
    app.reset();
    log.reset();  // after the app, which it delivers completions to
    if (int fd = wake_fd.exchange(-1); fd >= 0) ::close(fd);
  }

  // chat::ChatHooks: adapt the std::function hooks, containing their exceptions.
  void authorize(protocol::ConnectionId, const protocol::HttpRequest& request, chat::ChatAuthDecision& decision) override {
    if (draining) {
      decision.status = 503;
      decision.reason = "server stopping";
      return;
    }
    if (!hooks.authorize) return;
    try {
      Authorization answer = hooks.authorize(Handshake(request));
      if (!answer.accept) {
        decision.status = answer.status == 101 ? 403 : answer.status;
        decision.reason = std::move(answer.reason);
        return;
      }
      decision.user = std::move(answer.user);
    } catch (...) {
      decision.status = 500;
      decision.reason = "authorization failed";
    }
  }

  bool allow_message(const chat::ChatMessageEvent& event) override {
    if (!hooks.on_message) return true;
    try {
      return hooks.on_message(Message{event.connection, event.user, event.room, event.to, event.text});
    } catch (...) {
      return false;
    }
  }

  bool on_custom(protocol::ConnectionId id, std::string_view user, std::string_view type,
                 std::string_view json) override {
    if (!hooks.on_custom) return false;
    try {
      return hooks.on_custom(CustomMessage{id, user, type, json});
    } catch (...) {
      return false;
    }
  }

  // The eventfd: stop requests and publishes from other threads.
  void on_event(int fd, uint32_t, uint32_t) override {
    uint64_t count;
    while (::read(fd, &count, sizeof count) == static_cast<ssize_t>(sizeof count)) {
    }
    std::vector<Post> posts;
    {
      std::lock_guard<std::mutex> lock(mutex);
      posts.swap(queue);
    }
    for (const Post& post : posts) app->publish(post.room, post.from, post.text);
    if (stop_requested.load() && !draining) {
      // Graceful: close every connection and keep serving the close handshakes until they are
      // all gone or the close timeout has passed (drain_check ends the loop).
      draining = true;
      drain_deadline_ms = loop.now_ms() + config.close_timeout_ms;
      server->close_all(protocol::kCloseGoingAway, "server stopping");
    }
  }

  // Runs at the end of every iteration, after WsServer has freed closed connections.
  void drain_check() {
    if (draining && (server->stats().connections == 0 || loop.now_ms() >= drain_deadline_ms)) loop.stop();
  }

  void wake() {
    int fd = wake_fd.load();
    if (fd < 0) return;
    uint64_t one = 1;
    // Only fails when the counter would overflow, and then a wake-up is pending anyway.
    ssize_t rc = ::write(fd, &one, sizeof one);
    (void)rc;
  }

  bool on_loop_thread() const { return running.load() && std::this_thread::get_id() == loop_thread.load(); }

  int start() {
    if (started) return 0;
    // A failed start leaves handlers registered with the loop: it is final.
    if (start_error != 0) return start_error;
    start_error = try_start();
    started = start_error == 0;
    return start_error;
  }

  int try_start() {
    reactor::SocketAddress bind_address;
    if (reactor::parse_address(config.listen, bind_address) != 0) return -EINVAL;
    if (int rc = loop.open(); rc != 0) return rc;
    protocol::WsServerConfig server_config;
    server_config.max_message_size = config.max_message_size;
    server_config.handshake_timeout_ms = config.handshake_timeout_ms;
    server_config.close_timeout_ms = config.close_timeout_ms;
    server = std::make_unique<protocol::WsServer>(loop, server_config);
    transport = std::make_unique<chat::WsServerTransport>(*server);
    chat::ChatConfig chat_config;
    chat_config.history_size = config.history_size;
    chat_config.max_text_bytes = config.max_text_bytes;
    chat_config.max_rooms_per_connection = config.max_rooms_per_connection;
    chat_config.recovery_limit = config.recovery_limit;
    chat_config.dedup_window_ms = uint64_t{config.dedup_window_minutes} * 60 * 1000;
    if (!config.store.empty() && config.store != "none") {
      chat::RoomLogConfig log_config;
      log_config.path = config.store;
      log_config.sync_full = config.sync_full;
      log_config.history_keep = config.history_keep;
      log_config.dedup_window_ms = chat_config.dedup_window_ms;
      log = chat::open_room_log(log_config, loop, error);
      if (log == nullptr) return -EIO;
    }
    app = std::make_unique<chat::ChatApp>(*transport, chat_config, this, log.get());
    server->add_websocket_route(config.path, app.get());
    if (config.serve_healthz) {
      server->add_http_route("/healthz", [](const protocol::HttpRequest&, protocol::HttpReply& reply) {
        reply.body = "ok\n";
      });
    }
    reactor::ListenOptions options;
    options.reuse_port = config.reuse_port;
    if (int rc = server->listen(bind_address, options); rc != 0) return rc;
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return -errno;
    int handler = loop.add_handler(this);
    if (handler < 0) {
      ::close(fd);
      return -EMFILE;
    }
    if (int rc = loop.watch(fd, handler, 0, EPOLLIN | EPOLLET); rc != 0) {
      ::close(fd);
      return rc;
    }
    loop.add_before_sleep([this] { drain_check(); });
    wake_fd.store(fd);
    // A stop() that came before the eventfd existed.
    if (stop_requested.load()) wake();
    return 0;
  }

  Config config;
  Hooks hooks;
  reactor::EventLoop loop;
  std::unique_ptr<protocol::WsServer> server;
  std::unique_ptr<chat::WsServerTransport> transport;
  std::unique_ptr<chat::RoomLog> log;  // null: memory only
  std::unique_ptr<chat::ChatApp> app;
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
  std::vector<Post> queue;  // publishes from other threads, guarded by mutex
};

Server::Server(Config config, Hooks hooks) : impl_(std::make_unique<Impl>(std::move(config), std::move(hooks))) {}

Server::~Server() = default;

int Server::start() { return impl_->start(); }

const std::string& Server::error() const { return impl_->error; }

uint16_t Server::port() const { return impl_->started ? impl_->server->address().port() : 0; }

std::string Server::address() const { return impl_->started ? impl_->server->address().to_string() : std::string(); }

int Server::run() {
  if (int rc = impl_->start(); rc != 0) return rc;
  impl_->loop_thread.store(std::this_thread::get_id());
  impl_->running.store(true);
  {
    // Publishes queued before run(): let the first iteration deliver them.
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (!impl_->queue.empty()) impl_->wake();
  }
  int rc = impl_->loop.run();
  impl_->running.store(false);
  impl_->stop_requested.store(false);
  impl_->draining = false;
  return rc;
}

void Server::stop() {
  // Async-signal-safe: a lock-free atomic store and write(2).
  impl_->stop_requested.store(true);
  impl_->wake();
}

bool Server::publish(std::string_view room, std::string_view text, std::string_view from) {
  if (!chat::is_valid_room_name(room) || !chat::is_valid_user_name(from)) return false;
  // A text frame must carry UTF-8 (RFC 6455 8.1): clients would fail the connection otherwise.
  if (text.size() > impl_->config.max_text_bytes || !protocol::utf8_is_valid(text)) return false;
  if (impl_->on_loop_thread()) return impl_->app->publish(room, from, text);
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->queue.push_back({std::string(room), std::string(text), std::string(from)});
  }
  impl_->wake();
  return true;
}

bool Server::send(uint64_t client, std::string_view text) {
  if (!impl_->started || !impl_->on_loop_thread()) return false;
  return impl_->app->send_to(client, text) != protocol::SendResult::kDropped;
}

}  // namespace parley
