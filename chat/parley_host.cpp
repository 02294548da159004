#include <algorithm>
#include <future>
#include <memory>

#include "chat/chat_codec.h"
#include "chat/chat_metrics.h"
#include "chat/parley_impl.h"
#include "chat/server_metrics.h"
#include "protocol/close_code.h"
#include "protocol/utf8.h"

// parley::Server's host-side calls: safe from any thread, they run on the loop thread (at once
// from a hook, else posted through the eventfd and awaited).

namespace parley {

bool Server::Impl::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!accepting_tasks) return false;
    tasks.push_back(std::move(task));
  }
  wake();
  return true;
}

template <typename R, typename Fn>
R Server::Impl::call(Fn fn, R fallback) {
  if (on_loop_thread()) return fn();
  // Shared: the promise must outlive whichever of the two sides finishes last.
  auto promise = std::make_shared<std::promise<R>>();
  std::future<R> answer = promise->get_future();
  // run() drains every accepted task before it returns (on its thread), so a posted task is
  // always answered.
  if (!post([promise, fn]() mutable { promise->set_value(fn()); })) return fallback;
  return answer.get();
}

namespace {

// RFC 6455 7.4.2: 1000 (normal), 3000-3999 (registered) and 4000-4999 (private) are the
// application's; the rest belong to the protocol and extensions.
bool host_close_code(uint16_t code) { return code == 1000 || (code >= 3000 && code <= 4999); }

// RFC 6455 5.5: a control frame's payload is at most 125 bytes, 2 of them the code; 5.5.1:
// the reason is UTF-8.
bool host_close_reason(std::string_view reason) { return reason.size() <= 123 && protocol::utf8_is_valid(reason); }

std::vector<std::string> sorted(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

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
  if (!protocol::utf8_is_valid(text)) return false;
  Impl& impl = *impl_;
  return impl.call([&impl, client, copy = std::string(text)] {
    return impl.app->send_to(client, copy) != protocol::SendResult::kDropped;
  }, false);
}

bool Server::send_to_user(std::string_view user, std::string_view text) {
  if (!protocol::utf8_is_valid(text)) return false;
  Impl& impl = *impl_;
  return impl.call([&impl, name = std::string(user), copy = std::string(text)] {
    protocol::ConnectionId id = impl.app->connection_of(name);
    return id != 0 && impl.app->send_to(id, copy) != protocol::SendResult::kDropped;
  }, false);
}

bool Server::kick(uint64_t client, uint16_t code, std::string_view reason) {
  if (!host_close_code(code) || !host_close_reason(reason)) return false;
  Impl& impl = *impl_;
  return impl.call([&impl, client, code, why = std::string(reason)] {
    // The chat path is the server's only WebSocket route: an open id is a chat connection.
    if (!impl.server->is_open(client)) return false;
    impl.app->close(client, code, why);
    return true;
  }, false);
}

bool Server::kick_user(std::string_view user, uint16_t code, std::string_view reason) {
  if (!host_close_code(code) || !host_close_reason(reason)) return false;
  Impl& impl = *impl_;
  return impl.call([&impl, name = std::string(user), code, why = std::string(reason)] {
    protocol::ConnectionId id = impl.app->connection_of(name);
    if (id == 0) return false;
    impl.app->close(id, code, why);
    return true;
  }, false);
}

std::vector<std::string> Server::users() {
  Impl& impl = *impl_;
  return impl.call([&impl] {
    std::vector<std::string> out;
    impl.app->for_each_user([&](std::string_view name, protocol::ConnectionId) { out.emplace_back(name); });
    return sorted(std::move(out));
  }, std::vector<std::string>{});
}

std::vector<std::string> Server::rooms() {
  Impl& impl = *impl_;
  return impl.call([&impl] {
    std::vector<std::string> out;
    impl.app->for_each_user([&](std::string_view name, protocol::ConnectionId) {
      for (std::string& room : impl.app->rooms_of(name)) out.push_back(std::move(room));
    });
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }, std::vector<std::string>{});
}

std::vector<std::string> Server::members(std::string_view room) {
  Impl& impl = *impl_;
  return impl.call([&impl, name = std::string(room)] { return sorted(impl.app->members_of(name)); },
                   std::vector<std::string>{});
}

std::vector<std::string> Server::rooms_of(std::string_view user) {
  Impl& impl = *impl_;
  return impl.call([&impl, name = std::string(user)] { return sorted(impl.app->rooms_of(name)); },
                   std::vector<std::string>{});
}

uint64_t Server::client_of(std::string_view user) {
  Impl& impl = *impl_;
  return impl.call([&impl, name = std::string(user)] { return uint64_t{impl.app->connection_of(name)}; },
                   uint64_t{0});
}

Stats Server::stats() {
  Impl& impl = *impl_;
  return impl.call([&impl] {
    Stats out;
    const protocol::WsServerStats& server = impl.server->stats();
    out.connections = server.connections;
    out.busy_rejected = server.busy_rejected;
    out.users = impl.app->users();
    out.rooms = impl.app->room_stats().rooms;
    out.messages = impl.app->stats().messages;
    out.direct_messages = impl.app->stats().direct_messages;
    out.vetoed = impl.app->stats().vetoed;
    out.rate_limited = impl.app->access_stats().rate_limited;
    out.unauthorized = impl.app->access_stats().unauthorized;
    return out;
  }, Stats{});
}

std::string Server::metrics() {
  Impl& impl = *impl_;
  return impl.call([&impl] {
    return chat::render_metrics(impl.server->stats(), impl.loop.iterations()) + chat::render_app_metrics(*impl.app);
  }, std::string());
}

}  // namespace parley
