#include "chat/parleyd_worker.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "chat/auth_token.h"
#include "chat/held_session_expiry.h"
#include "chat/chat_app.h"
#include "chat/chat_metrics.h"
#include "chat/parleyd/operations.h"
#include "chat/server_metrics.h"
#include "chat/cluster/redis_presence.h"
#include "chat/cluster/redis_room_log.h"
#include "chat/store/room_log.h"
#include "chat/upgrade_auth.h"
#include "chat/web_routes.h"
#include "protocol/echo_app.h"
#include "protocol/ws_server.h"
#include "reactor/event_loop.h"
#include "reactor/timer_wheel.h"

namespace chat {

uint64_t chat_message_limit(uint64_t max_text_bytes) { return chat_hard_message_size(max_text_bytes); }

namespace {

// Turns the access-control and limit options into ChatConfig fields: reads the token secret,
// builds the Origin policy, and warns once per process when any Origin may connect. False
// (after one line on stderr) on a start-up error.
bool configure_chat_access(const ParleydOptions& options, ChatConfig& config) {
  std::string error;
  if (!chat_access_from_options(options, config, error)) {
    std::fprintf(stderr, "parleyd: %s\n", error.c_str());
    return false;
  }
  if (options.allow_origin.empty()) {
    std::fprintf(stderr,
                 "parleyd: WARNING: any Origin may connect (development default); use --allow-origin in "
                 "production\n");
  }
  config.history_memory = options.history_memory;
  config.max_rooms = options.max_rooms;
  config.max_rooms_per_ip = options.max_rooms_per_ip;
  return true;
}

}  // namespace

int run_parleyd_worker(const ParleydOptions& options, const reactor::SocketAddress& address, bool reuse_port,
                       const std::function<void(const reactor::SocketAddress&)>& on_listening,
                       const reactor::TlsContext* tls, const WorkerRuntime* runtime) {
  ChatConfig chat_config;
  chat_config.recovery_limit = options.recovery_limit;
  chat_config.history_size = options.history_size;
  chat_config.max_text_bytes = options.max_text_bytes;
  chat_config.max_rooms_per_connection = options.max_rooms_per_connection;
  if (!configure_chat_access(options, chat_config)) return 1;

  reactor::EventLoop loop;
  if (int rc = loop.open(); rc != 0) {
    std::fprintf(stderr, "parleyd: cannot create the event loop: %s\n", std::strerror(-rc));
    return 1;
  }
  WorkerOperations ops(options, runtime != nullptr ? *runtime : WorkerRuntime{}, loop);
  ops.log().info("starting", {{"version", kParleyVersion},
                              {"config", options.config_file.empty() ? std::string_view("none")
                                                                     : std::string_view(options.config_file)},
                              {"pid", static_cast<int64_t>(getpid())}});
  protocol::WsServerConfig config = ws_server_config_from_options(options);
  protocol::WsServer server(loop, config);
  if (config.io_uring && !server.io_uring_active()) {
    ops.log().warn("io_uring unavailable, sending with sendmsg",
                   {{"error", std::string_view(std::strerror(-server.io_uring_error()))}});
  }
  if (tls != nullptr) {
    if (int rc = server.use_tls(tls); rc != 0) {
      std::fprintf(stderr, "parleyd: cannot set up TLS: %s\n", std::strerror(-rc));
      return 1;
    }
  }

  // One line when the heartbeat budget starts stretching the ping period and one when it stops
  // (the budget's hysteresis keeps these rare); /metrics has the period in use meanwhile.
  server.on_heartbeat_budget([&server](bool stretching, uint32_t period_ms, uint64_t connections) {
    if (stretching) {
      std::fprintf(stderr,
                   "parleyd: heartbeat budget: %llu connections at one ping per %u ms exceed %u pings/s; "
                   "pinging every %u ms (pid %d)\n",
                   static_cast<unsigned long long>(connections), server.config().ping_interval_ms,
                   server.config().max_pings_per_second,
                   period_ms, static_cast<int>(getpid()));
    } else {
      std::fprintf(stderr, "parleyd: heartbeat budget: %llu connections, back to one ping per %u ms (pid %d)\n",
                   static_cast<unsigned long long>(connections), period_ms, static_cast<int>(getpid()));
    }
  });
  // One line when admission pacing starts (the server fell behind) and one when it stops.
  server.on_admission_pacing([](bool pacing, uint32_t rate, uint64_t connections) {
    if (pacing) {
      std::fprintf(stderr, "parleyd: admission paced: behind with %llu connections; accepting %u/s (pid %d)\n",
                   static_cast<unsigned long long>(connections), rate, static_cast<int>(getpid()));
    } else {
      std::fprintf(stderr, "parleyd: admission paced: caught up with %llu connections; accepting freely (pid %d)\n",
                   static_cast<unsigned long long>(connections), static_cast<int>(getpid()));
    }
  });
  ops.watch(server);
  protocol::EchoApp echo(server);
  // With --auth-secret, /echo asks for the same token as /chat: otherwise anyone could make the
  // server read 16 MiB messages on a deployment that believes itself closed (issue 13). The gate
  // is always in place (a pass-through without a secret) so that a SIGHUP can rotate, add or
  // remove the secret for /echo as it does for /chat.
  TokenGatedApp gated_echo(echo, chat_config.token_secret);
  ops.manage_echo_gate(gated_echo);
  LoggedApp logged_echo(gated_echo, ops.log(), "/echo");
  if (options.echo) server.add_websocket_route("/echo", &logged_echo);
  // Opened before serving (it reads the disk once, on this thread); declared before the app,
  // which it must outlive.
  RoomLogConfig log_config;
  log_config.path = options.store;
  log_config.sync_full = options.sync_full;
  log_config.history_keep = options.history_keep;
  log_config.dedup_window_ms = uint64_t{options.dedup_window_minutes} * 60 * 1000;
  chat_config.dedup_window_ms = log_config.dedup_window_ms;
  log_config.max_age_ms = options.history_max_age_seconds * 1000;
  chat_config.resume_window_ms = uint64_t{options.resume_window_seconds} * 1000;
  std::unique_ptr<RoomLog> room_log;  // null with --store none: the app keeps memory only
  std::unique_ptr<RedisPresence> presence;  // --redis: names, who and presence across nodes
  if (!options.redis.empty()) {
    // One chat across processes (issue 15). Checked once here, blocking, before serving: an
    // unreachable Redis at start is a configuration error (exit 1), one that goes away later is
    // an outage the server rides out (error unavailable, reconnect with backoff).
    RedisEndpoint endpoint;
    std::string redis_error;
    if (const char* password = std::getenv(kRedisPasswordEnv); password != nullptr) endpoint.password = password;
    if (!parse_redis_url(options.redis, endpoint, redis_error) || !resolve_redis_endpoint(endpoint, redis_error) ||
        (room_log = open_redis_room_log(log_config, endpoint, loop, redis_error)) == nullptr) {
      std::fprintf(stderr, "parleyd: %s\n", redis_error.c_str());
      return 1;
    }
    presence = std::make_unique<RedisPresence>(endpoint, loop);
  } else if (options.store != "none") {
    // The store's writer thread inherits this mask: SIGINT/SIGTERM must reach the loop's
    // signalfd (watch_signals below), not kill the process from the writer.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    std::string log_error;
    room_log = open_room_log(log_config, loop, log_error);
    if (room_log == nullptr) {
      std::fprintf(stderr, "parleyd: %s\n", log_error.c_str());
      return 1;
    }
  }
  WsServerTransport chat_transport(server);
  ChatApp chat_app(chat_transport, chat_config, nullptr, room_log.get());
  chat_app.set_presence(presence.get());
  chat_app.set_loop_clock(&loop);
  HeldSessionExpiry held_expiry(loop, chat_app, chat_config.resume_window_ms);
  // Chat messages are small: a 16 MiB /echo limit must not let one /chat peer hold 16 MiB.
  LoggedApp logged_chat(chat_app, ops.log(), "/chat");
  server.add_websocket_route("/chat", &logged_chat, chat_message_limit(options.max_text_bytes));
  add_web_routes(server);
  ops.manage(server, chat_app);
  ops.set_ready_check([&chat_app, &room_log, &options](std::string& why) {
    if (room_log == nullptr) return true;
    if (!room_log->available()) {
      why = options.redis.empty() ? "store unavailable" : "redis unavailable";
      return false;
    }
    const RoomLogStats& stats = chat_app.room_log().stats();
    if (stats.queue_limit != 0 && stats.queue_depth >= stats.queue_limit) {
      why = "store queue full";
      return false;
    }
    return true;
  });
  const std::string worker_label =
      ops.runtime().labelled ? "worker=\"" + std::to_string(ops.runtime().index) + "\"" : std::string();
  auto metrics = [&, worker_label] {
    std::string body = render_metrics(server.stats(), loop.iterations()) + render_app_metrics(chat_app);
    body += render_process_metrics(&ops.log());
    ops.render_loop_metrics(body);
    return worker_label.empty() ? body : label_metrics(body, worker_label);
  };
  // With --metrics-listen the figures leave the public port: /metrics there is 404.
  ops.add_routes(server, options.metrics_listen.empty() ? std::function<std::string()>() : nullptr);
  if (options.metrics_listen.empty()) {
    server.add_http_route("/metrics", [metrics](const protocol::HttpRequest&, protocol::HttpReply& reply) {
      reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
      reply.body = metrics();
    });
  } else if (ops.listen_metrics(metrics) != 0) {
    return 1;
  }

  reactor::ListenOptions listen_options;
  listen_options.reuse_port = reuse_port;
  if (int rc = server.listen(address, listen_options); rc != 0) {
    std::fprintf(stderr, "parleyd: cannot listen on %s: %s\n", address.to_string().c_str(), std::strerror(-rc));
    return 1;
  }
  ops.log().info("listening", {{"address", server.address().to_string()}});
  bool draining = false;
  int signal_rc = loop.watch_signals({SIGINT, SIGTERM, SIGHUP}, [&](int signo) {
    if (signo == SIGHUP) {
      ops.reload();
      return;
    }
    const char* name = signo == SIGINT ? "SIGINT" : "SIGTERM";
    if (draining) {
      ops.log().info("stopping now", {{"signal", name}, {"second", 1}});
      loop.stop();
      return;
    }
    draining = true;
    ops.set_draining();
    ops.log().info("draining", {{"signal", name}, {"timeout_ms", options.drain_timeout_ms}});
    server.drain(options.drain_timeout_ms, [&] { loop.stop(); });
  });
  if (signal_rc != 0) {
    std::fprintf(stderr, "parleyd: cannot watch signals: %s\n", std::strerror(-signal_rc));
    return 1;
  }
  on_listening(server.address());
  int rc = loop.run();
  if (rc != 0) {
    std::fprintf(stderr, "parleyd: event loop failed: %s\n", std::strerror(-rc));
    return 1;
  }
  ops.log().info("stopped", {{"pid", static_cast<int64_t>(getpid())}});
  return 0;
}

}  // namespace chat
