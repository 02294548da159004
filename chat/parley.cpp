#include "chat/parley.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <utility>

#include "chat/chat_codec.h"
#include "chat/chat_metrics.h"
#include "chat/parley_impl.h"
#include "chat/server_metrics.h"
#include "protocol/close_code.h"
#include "protocol/http_request.h"
#include "reactor/socket_ops.h"
#include "reactor/tls_context.h"

// parley::Server's lifecycle (start, run, stop) and the adapters from ChatHooks to parley::Hooks.
// Config checks are in parley_config.cpp, the host-side calls in parley_host.cpp.

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

Server::Impl::Impl(Config c, Hooks h) : config(std::move(c)), hooks(std::move(h)) {}

Server::Impl::~Impl() {
  // The app is referenced by the server's routes: the server goes first.
  server.reset();
  app.reset();
  log.reset();  // after the app, which it delivers completions to
  if (int fd = wake_fd.exchange(-1); fd >= 0) ::close(fd);
}

void Server::Impl::authorize(protocol::ConnectionId, const protocol::HttpRequest& request,
                             chat::ChatAuthDecision& decision) {
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
    // With a token secret, the token's user stands unless the hook names another.
    if (!answer.user.empty()) decision.user = std::move(answer.user);
  } catch (...) {
    decision.status = 500;
    decision.reason = "authorization failed";
  }
}

bool Server::Impl::allow_message(const chat::ChatMessageEvent& event) {
  if (!hooks.on_message) return true;
  try {
    return hooks.on_message(Message{event.connection, event.user, event.room, event.to, event.text});
  } catch (...) {
    return false;
  }
}

bool Server::Impl::on_custom(protocol::ConnectionId id, std::string_view user, std::string_view type,
                             std::string_view json) {
  if (!hooks.on_custom) return false;
  try {
    return hooks.on_custom(CustomMessage{id, user, type, json});
  } catch (...) {
    return false;
  }
}

bool Server::Impl::allow_name(protocol::ConnectionId, std::string_view name, std::string& reason) {
  if (!hooks.allow_name) return true;
  try {
    reason = hooks.allow_name(name);
  } catch (...) {
    reason = "name check failed";
  }
  return reason.empty();
}

namespace {

// Runs a notification hook; its exceptions are the host's bug and must not unwind the loop.
template <typename Hook, typename Event>
void notify(const Hook& hook, const Event& event) {
  if (!hook) return;
  try {
    hook(event);
  } catch (...) {
  }
}

}  // namespace

void Server::Impl::on_connect(protocol::ConnectionId id, std::string_view user) {
  notify(hooks.on_connect, Client{id, user, 0});
}

void Server::Impl::on_disconnect(protocol::ConnectionId id, std::string_view user, uint16_t code) {
  notify(hooks.on_disconnect, Client{id, user, code});
}

void Server::Impl::on_join(protocol::ConnectionId id, std::string_view user, std::string_view room) {
  notify(hooks.on_join, RoomEvent{id, user, room});
}

void Server::Impl::on_leave(protocol::ConnectionId id, std::string_view user, std::string_view room) {
  notify(hooks.on_leave, RoomEvent{id, user, room});
}

void Server::Impl::on_event(int fd, uint32_t, uint32_t) {
  uint64_t count;
  while (::read(fd, &count, sizeof count) == static_cast<ssize_t>(sizeof count)) {
  }
  std::vector<Post> posts;
  {
    std::lock_guard<std::mutex> lock(mutex);
    posts.swap(queue);
  }
  for (const Post& post : posts) app->publish(post.room, post.from, post.text);
  run_tasks();
  if (stop_requested.load() && !draining) {
    // Graceful: close every connection and keep serving the close handshakes until they are
    // all gone or the drain timeout has passed (drain_check ends the loop).
    draining = true;
    drain_deadline_ms = loop.now_ms() + config.drain_timeout_ms;
    server->close_all(protocol::kCloseGoingAway, "server stopping");
  }
}

void Server::Impl::run_tasks() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(mutex);
    batch.swap(tasks);
  }
  for (auto& task : batch) task();
}

void Server::Impl::drain_check() {
  if (draining && (server->stats().connections == 0 || loop.now_ms() >= drain_deadline_ms)) loop.stop();
}

void Server::Impl::wake() {
  int fd = wake_fd.load();
  if (fd < 0) return;
  uint64_t one = 1;
  // Only fails when the counter would overflow, and then a wake-up is pending anyway.
  ssize_t rc = ::write(fd, &one, sizeof one);
  (void)rc;
}

int Server::Impl::start() {
  if (started) return 0;
  // A failed start leaves handlers registered with the loop: it is final.
  if (start_error != 0) return start_error;
  start_error = try_start();
  started = start_error == 0;
  return start_error;
}

int Server::Impl::try_start() {
  if (!validate_config(config, error)) return -EINVAL;
  reactor::SocketAddress bind_address;
  if (reactor::parse_address(config.listen, bind_address) != 0) {
    error = "invalid Config::listen '" + config.listen + "' (HOST:PORT)";
    return -EINVAL;
  }
  chat::ChatConfig chat_settings;
  if (!chat_config(config, chat_settings, error)) return -EINVAL;
  if (!config.tls_cert_file.empty()) {
    tls = reactor::TlsContext::create(config.tls_cert_file, config.tls_key_file, error);
    if (tls == nullptr) return -EINVAL;
  }
  if (int rc = loop.open(); rc != 0) return rc;
  server = std::make_unique<protocol::WsServer>(loop, ws_server_config(config));
  if (tls != nullptr) {
    if (int rc = server->use_tls(tls.get()); rc != 0) {
      error = "cannot set up TLS";
      return rc;
    }
  }
  transport = std::make_unique<chat::WsServerTransport>(*server);
  if (!config.store.empty() && config.store != "none") {
    chat::RoomLogConfig log_config;
    log_config.path = config.store;
    log_config.sync_full = config.sync_full;
    log_config.history_keep = config.history_keep;
    log_config.dedup_window_ms = chat_settings.dedup_window_ms;
    log_config.max_age_ms = config.history_max_age_seconds * 1000;
    log = chat::open_room_log(log_config, loop, error);
    if (log == nullptr) return -EIO;
  }
  app = std::make_unique<chat::ChatApp>(*transport, chat_settings, this, log.get());
  app->set_loop_clock(&loop);
  held_expiry = std::make_unique<chat::HeldSessionExpiry>(loop, *app, chat_settings.resume_window_ms);
  // As parleyd: chat messages are small, so the chat path's limit is the one its text limit
  // implies (chat_hard_message_size), under the server-wide max_message_size.
  server->add_websocket_route(config.path, app.get(),
                              std::min(config.max_message_size, chat::chat_hard_message_size(config.max_text_bytes)));
  if (config.serve_healthz) {
    server->add_http_route("/healthz", [](const protocol::HttpRequest&, protocol::HttpReply& reply) {
      reply.body = "ok\n";
    });
  }
  if (config.serve_metrics) {
    server->add_http_route("/metrics", [this](const protocol::HttpRequest&, protocol::HttpReply& reply) {
      reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
      reply.body = chat::render_metrics(server->stats(), loop.iterations()) + chat::render_app_metrics(*app);
    });
  }
  reactor::ListenOptions options;
  options.reuse_port = config.reuse_port;
  if (int rc = server->listen(bind_address, options); rc != 0) {
    error = "cannot listen on " + config.listen;
    return rc;
  }
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
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->accepting_tasks = true;
    // Publishes queued before run(): let the first iteration deliver them.
    if (!impl_->queue.empty()) impl_->wake();
  }
  int rc = impl_->loop.run();
  {
    // From here host calls answer "not running"; the ones already queued still run, here on
    // the loop's thread, so no caller waits forever.
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->accepting_tasks = false;
  }
  impl_->run_tasks();
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

}  // namespace parley
