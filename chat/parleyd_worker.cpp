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
#include "chat/chat_app.h"
#include "chat/parleyd/operations.h"
#include "chat/server_metrics.h"
#include "chat/cluster/redis_room_log.h"
#include "chat/store/room_log.h"
#include "chat/upgrade_auth.h"
#include "chat/web_routes.h"
#include "protocol/echo_app.h"
#include "protocol/ws_server.h"
#include "reactor/event_loop.h"
#include "reactor/memory_budget.h"

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

// The /chat access-control counters (ChatAccessStats) in the Prometheus text format.
std::string render_access_metrics(const ChatAccessStats& stats) {
  std::string out;
  auto counter = [&out](const char* name, const char* help, uint64_t value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
           std::to_string(value) + "\n";
  };
  counter("parley_chat_unauthorized_total", "/chat upgrades refused 401 (missing or invalid token)",
          stats.unauthorized);
  counter("parley_chat_forbidden_origin_total", "/chat upgrades refused 403 (Origin)", stats.forbidden_origins);
  counter("parley_chat_handshake_limited_total", "/chat upgrades refused 429 (--handshake-rate)",
          stats.handshakes_limited);
  counter("parley_chat_rate_limited_total", "chat messages dropped by --rate-limit", stats.rate_limited);
  counter("parley_chat_rate_closed_total", "connections closed 1008 for flooding", stats.rate_closed);
  counter("parley_chat_forbidden_room_total", "joins outside a token's rooms claim", stats.forbidden_rooms);
  counter("parley_chat_room_full_total", "joins refused by --max-room-members", stats.rooms_full);
  counter("parley_chat_room_limit_total", "joins refused by --max-rooms or --max-rooms-per-ip", stats.room_limit);
  return out;
}

// What the /chat rooms hold (ChatRoomStats) in the Prometheus text format.
std::string render_room_metrics(const ChatRoomStats& stats) {
  std::string out;
  auto metric = [&out](const char* name, const char* type, const char* help, uint64_t value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
           std::to_string(value) + "\n";
  };
  metric("parley_chat_rooms", "gauge", "live chat rooms", stats.rooms);
  metric("parley_chat_history_bytes", "gauge", "heap bytes held by all rooms' history", stats.history_bytes);
  metric("parley_chat_history_memory_bytes", "gauge", "the --history-memory budget (0: none)",
         stats.history_memory);
  metric("parley_chat_history_evictions_total", "counter", "messages evicted to keep --history-memory",
         stats.history_evictions);
  return out;
}

// The room log's counters (RoomLogStats) and the app's store-related refusals, Prometheus text.
std::string render_store_metrics(const RoomLogStats& stats, const ChatStats& chat) {
  std::string out;
  auto metric = [&out](const char* name, const char* type, const char* help, uint64_t value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
           std::to_string(value) + "\n";
  };
  metric("parley_store_commits_total", "counter", "store transactions committed", stats.commits);
  metric("parley_store_messages_total", "counter", "messages committed to the store", stats.messages);
  metric("parley_store_batches_total", "counter", "store transactions attempted", stats.batches);
  metric("parley_store_errors_total", "counter", "store transactions failed (their senders got unavailable)",
         stats.errors);
  metric("parley_store_unavailable_total", "counter", "messages refused: the store failed or its queue was full",
         stats.unavailable + stats.rejected_full);
  metric("parley_store_rejected_full_total", "counter", "store requests refused at the queue bound",
         stats.rejected_full);
  metric("parley_store_duplicates_total", "counter", "resent messages answered with their original ack",
         stats.duplicates);
  metric("parley_store_reads_total", "counter", "store reads (joins, recoveries, history)", stats.reads);
  metric("parley_store_max_batch", "gauge", "most messages committed in one transaction", stats.max_batch);
  metric("parley_store_queue_depth", "gauge", "store requests submitted and not yet completed", stats.queue_depth);
  metric("parley_store_queue_limit", "gauge", "the bound on parley_store_queue_depth (0: synchronous store)",
         stats.queue_limit);
  metric("parley_chat_unavailable_total", "counter", "chat requests answered error unavailable", chat.unavailable);
  return out;
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
  protocol::WsServerConfig config;
  config.max_message_size = options.max_message_size;
  config.handshake_timeout_ms = options.handshake_timeout_ms;
  config.close_timeout_ms = options.close_timeout_ms;
  config.ping_interval_ms = options.ping_interval_ms;
  config.pong_timeout_ms = options.pong_timeout_ms;
  config.idle_timeout_ms = options.idle_timeout_ms;
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  config.max_pings_per_second = worker_ping_budget(options, cpus > 0 ? static_cast<uint32_t>(cpus) : 1);
  config.max_buffered = options.max_buffered;
  config.max_memory = options.max_memory == kAutoMemoryBudget ? reactor::default_memory_budget(options.workers)
                                                              : options.max_memory;
  config.slow_consumer =
      options.slow_consumer_drop ? protocol::SlowConsumerPolicy::kDrop : protocol::SlowConsumerPolicy::kClose;
  config.max_connections = options.max_connections;
  config.deflate = options.deflate;
  config.deflate_threshold = static_cast<size_t>(options.deflate_threshold);
  config.max_connections_per_ip = options.max_connections_per_ip;
  config.max_handshakes_per_ip = options.max_handshakes_per_ip;
  config.max_handshakes = options.max_handshakes;
  protocol::WsServer server(loop, config);
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
  // server read 16 MiB messages on a deployment that believes itself closed (issue 13).
  TokenGatedApp gated_echo(echo, chat_config.token_secret);
  protocol::WsApplication* echo_app = chat_config.token_secret.empty() ? static_cast<protocol::WsApplication*>(&echo)
                                                                       : &gated_echo;
  LoggedApp logged_echo(*echo_app, server, ops.log(), "/echo");
  if (options.echo) server.add_websocket_route("/echo", &logged_echo);
  // Opened before serving (it reads the disk once, on this thread); declared before the app,
  // which it must outlive.
  RoomLogConfig log_config;
  log_config.path = options.store;
  log_config.sync_full = options.sync_full;
  log_config.history_keep = options.history_keep;
  log_config.dedup_window_ms = uint64_t{options.dedup_window_minutes} * 60 * 1000;
  chat_config.dedup_window_ms = log_config.dedup_window_ms;
  std::unique_ptr<RoomLog> room_log;  // null with --store none: the app keeps memory only
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
  // Chat messages are small: a 16 MiB /echo limit must not let one /chat peer hold 16 MiB.
  LoggedApp logged_chat(chat_app, server, ops.log(), "/chat");
  server.add_websocket_route("/chat", &logged_chat, chat_message_limit(options.max_text_bytes));
  add_web_routes(server);
  ops.manage(server, chat_app);
  ops.set_ready_check([&chat_app, &room_log](std::string& why) {
    if (room_log == nullptr) return true;
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
    std::string body = render_metrics(server.stats(), loop.iterations());
    body += render_access_metrics(chat_app.access_stats());
    body += render_room_metrics(chat_app.room_stats());
    body += render_store_metrics(chat_app.room_log().stats(), chat_app.stats());
    body += render_chat_metrics(chat_app);
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
