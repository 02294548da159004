#include "chat/parleyd/operations.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "chat/auth_token.h"
#include "chat/chat_app.h"
#include "chat/parleyd/config.h"
#include "chat/prometheus_text.h"
#include "chat/server_metrics.h"
#include "chat/upgrade_auth.h"
#include "reactor/memory_budget.h"
#include "reactor/socket_ops.h"

#ifndef PARLEY_GIT_COMMIT
#define PARLEY_GIT_COMMIT "unknown"
#endif

namespace chat {

namespace {

LoggerOptions logger_options(const ParleydOptions& options) {
  LoggerOptions out;
  parse_log_level(options.log_level, out.level);
  parse_log_format(options.log_format, out.format);
  return out;
}

uint64_t count_open_fds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  uint64_t count = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count > 0 ? count - 1 : 0;  // not the directory's own fd
}

// Process start, seconds since the epoch: boot time plus the start tick of /proc/self/stat.
double process_start_seconds() {
  static const double start = [] {
    timespec now_real{};
    timespec now_mono{};
    clock_gettime(CLOCK_REALTIME, &now_real);
    clock_gettime(CLOCK_BOOTTIME, &now_mono);
    FILE* f = std::fopen("/proc/self/stat", "r");
    if (f == nullptr) return 0.0;
    char buffer[1024];
    size_t n = std::fread(buffer, 1, sizeof buffer - 1, f);
    std::fclose(f);
    buffer[n] = '\0';
    const char* p = std::strrchr(buffer, ')');
    unsigned long long start_ticks = 0;
    // Field 22 (starttime); after ')' come fields 3 onwards.
    for (int field = 3; p != nullptr && field <= 22; ++field) {
      p = std::strchr(p + 1, ' ');
      if (field == 22 && p != nullptr) start_ticks = std::strtoull(p + 1, nullptr, 10);
    }
    const double boot = static_cast<double>(now_real.tv_sec) + now_real.tv_nsec / 1e9 -
                        (static_cast<double>(now_mono.tv_sec) + now_mono.tv_nsec / 1e9);
    return boot + static_cast<double>(start_ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }();
  return start;
}

}  // namespace

std::string peer_of(protocol::ConnectionId id) {
  reactor::SocketAddress address;
  address.length = sizeof address.storage;
  if (getpeername(static_cast<int>(static_cast<uint32_t>(id)), reinterpret_cast<sockaddr*>(&address.storage),
                  &address.length) != 0) {
    return "unknown";
  }
  return address.to_string();
}

std::string render_process_metrics(const Logger* log) {
  std::string out;
  out += "# HELP parley_build_info The running parleyd: version and git commit.\n"
         "# TYPE parley_build_info gauge\n"
         "parley_build_info{version=\"" + std::string(kParleyVersion) + "\",commit=\"" PARLEY_GIT_COMMIT "\"} 1\n";
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                     static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  char text[64];
  std::snprintf(text, sizeof text, "%.6f", cpu);
  append_metric(out, "process_cpu_seconds_total", "counter", "User and system CPU time of the process.", text);
  append_metric(out, "process_resident_memory_bytes", "gauge", "Resident set size of the process.",
                std::to_string(resident_bytes()));
  append_metric(out, "process_open_fds", "gauge", "Open file descriptors.", std::to_string(count_open_fds()));
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  append_metric(out, "process_max_fds", "gauge", "The file descriptor limit (soft).",
                std::to_string(static_cast<unsigned long long>(limit.rlim_cur)));
  std::snprintf(text, sizeof text, "%.3f", process_start_seconds());
  append_metric(out, "process_start_time_seconds", "gauge", "Start of the process, seconds since the epoch.", text);
  if (log != nullptr) {
    append_metric(out, "parley_log_dropped_lines_total", "counter",
                  "Log lines dropped because stderr did not take them fast enough.",
                  std::to_string(log->dropped_lines()));
    append_metric(out, "parley_log_suppressed_lines_total", "counter",
                  "Warn lines held back by the per-reason log rate limit (summarised instead).",
                  std::to_string(log->suppressed_lines()));
  }
  return out;
}

std::string render_chat_metrics(const ChatApp& chat) {
  std::string out;
  const RoomTable& rooms = chat.rooms();
  uint64_t members = 0;
  for (size_t i = 0; i < rooms.slab_size(); ++i) members += rooms.room(static_cast<uint32_t>(i)).size();
  const ChatStats& stats = chat.stats();
  append_metric(out, "parley_chat_users", "gauge", "Identified chat users online.", std::to_string(chat.users()));
  append_metric(out, "parley_chat_room_members", "gauge", "Room memberships, all rooms together.",
                std::to_string(members));
  append_metric(out, "parley_chat_messages_total", "counter", "Room messages accepted.", std::to_string(stats.messages));
  append_metric(out, "parley_chat_direct_messages_total", "counter", "Direct messages accepted.",
                std::to_string(stats.direct_messages));
  append_metric(out, "parley_chat_deliveries_total", "counter", "Room message frames handed out to members.",
                std::to_string(stats.deliveries));
  append_metric(out, "parley_chat_errors_total", "counter", "Error replies sent to chat clients.",
                std::to_string(stats.errors));
  chat.publish_to_delivery().render(
      out, "parley_publish_to_delivery_seconds",
      "Room messages and DMs from clients: from arrival to fan-out to members' write queues, the store's "
      "commit included (1 ms resolution: both ends are the loop's per-iteration clock).");
  return out;
}

std::string label_metrics(std::string_view text, std::string_view label) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end == std::string_view::npos ? text.size() : end + 1);
    text.remove_prefix(line.size());
    if (line.empty() || line[0] == '#') {
      out += line;
      continue;
    }
    size_t name_end = line.find_first_of("{ ");
    if (name_end == std::string_view::npos) {
      out += line;
      continue;
    }
    out += line.substr(0, name_end);
    if (line[name_end] == '{') {
      out += '{';
      out += label;
      out += ',';
      out += line.substr(name_end + 1);
    } else {
      out += '{';
      out += label;
      out += '}';
      out += line.substr(name_end);
    }
  }
  return out;
}

void LoggedApp::on_open(protocol::ConnectionId id) {
  if (log_.enabled(LogLevel::kDebug)) log_.debug("open", {{"route", route_}, {"peer", peer_of(id)}});
  inner_.on_open(id);
}

void LoggedApp::on_close(protocol::ConnectionId id, uint16_t code) {
  if (log_.enabled(LogLevel::kDebug)) {
    log_.debug("close", {{"route", route_}, {"peer", peer_of(id)}, {"code", code}});
  }
  inner_.on_close(id, code);
}

protocol::WsServerConfig ws_server_config_from_options(const ParleydOptions& options) {
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
  config.io_uring = options.io_uring;
  config.max_connections_per_ip = options.max_connections_per_ip;
  config.max_handshakes_per_ip = options.max_handshakes_per_ip;
  config.max_handshakes = options.max_handshakes;
  return config;
}

bool chat_access_from_options(const ParleydOptions& options, ChatConfig& config, std::string& error) {
  config.token_secret.clear();
  if (!options.auth_secret_file.empty() &&
      !read_token_secret(options.auth_secret_file.c_str(), config.token_secret, error)) {
    return false;
  }
  config.origins.reset();
  if (!options.allow_origin.empty() || options.deny_missing_origin) {
    OriginPolicy policy;
    if (!policy.parse(options.allow_origin.empty() ? std::string_view("*") : std::string_view(options.allow_origin),
                      error)) {
      error = "invalid --allow-origin: " + error;
      return false;
    }
    policy.set_missing_origin(options.deny_missing_origin ? OriginPolicy::MissingOrigin::kDeny
                                                          : OriginPolicy::MissingOrigin::kAllow);
    config.origins = std::move(policy);
  }
  config.message_rate = options.rate_limit;
  config.message_burst = options.rate_burst;
  config.handshake_rate = options.handshake_rate;
  config.handshake_burst = options.handshake_rate == 0 ? 1 : options.handshake_rate;
  config.max_room_members = options.max_room_members;
  config.max_text_bytes = options.max_text_bytes;
  return true;
}

WorkerOperations::WorkerOperations(const ParleydOptions& options, WorkerRuntime runtime, reactor::EventLoop& loop)
    : options_(options),
      runtime_(std::move(runtime)),
      loop_(loop),
      tick_wheel_(loop.now_ms(), &WorkerOperations::on_tick, this, 100) {
  LoggerOptions log_options = logger_options(options);
  if (runtime_.labelled) log_options.program = "parleyd[" + std::to_string(runtime_.index) + "]";
  int fd = Logger::open_stderr();
  log_ = std::make_unique<Logger>(fd < 0 ? -1 : fd, log_options);
}

WorkerOperations::~WorkerOperations() {
  tick_wheel_.cancel(&tick_timer_);
  if (log_) log_->flush();
}

void WorkerOperations::watch(protocol::WsServer& server) {
  server.on_refusal([this](protocol::ConnectionId id, int code, std::string_view reason) {
    if (!log_->enabled(LogLevel::kWarn)) return;
    std::string_view why = reason;
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.remove_suffix(1);
    const std::string key = std::to_string(code);
    log_->warn_limited(key, code >= 1000 ? "closed" : "refused",
                       {{"peer", peer_of(id)}, {"code", code}, {"reason", why}});
  });
  // At the end of every iteration (after the server's own hooks, added before): the iteration's
  // busy time -- one clock read here, the start being the loop's own read after epoll_wait --
  // and what stderr takes without blocking.
  loop_.add_before_sleep([this] {
    if (loop_.iterations() != measured_iteration_) {
      measured_iteration_ = loop_.iterations();
      timespec now{};
      clock_gettime(CLOCK_MONOTONIC, &now);
      const uint64_t now_us = static_cast<uint64_t>(now.tv_sec) * 1000000 + static_cast<uint64_t>(now.tv_nsec) / 1000;
      const uint64_t start_us = loop_.now_ms() * 1000;
      iteration_time_.record(now_us > start_us ? now_us - start_us : 0);
    }
    if (log_->buffered_bytes() != 0) log_->flush();
  });
  loop_.add_timer_wheel(&tick_wheel_);
  tick_wheel_.schedule(&tick_timer_, 1000);
}

void WorkerOperations::on_tick(void* context, reactor::TimerNode* node) {
  auto* self = static_cast<WorkerOperations*>(context);
  self->log_->tick();
  self->tick_wheel_.schedule(node, 1000);
}

void WorkerOperations::add_routes(protocol::WsServer& server, std::function<std::string()> metrics) {
  server.add_http_route("/healthz", [](const protocol::HttpRequest&, protocol::HttpReply& reply) {
    reply.body = "ok\n";
  });
  server.add_http_route("/readyz", [this](const protocol::HttpRequest&, protocol::HttpReply& reply) {
    std::string why;
    if (draining_) {
      why = "draining";
    } else if (ready_ && !ready_(why)) {
      if (why.empty()) why = "not ready";
    }
    reply.status = why.empty() ? 200 : 503;
    reply.body = why.empty() ? "ready\n" : why + "\n";
  });
  if (metrics) {
    server.add_http_route("/metrics", [metrics](const protocol::HttpRequest&, protocol::HttpReply& reply) {
      reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
      reply.body = metrics();
    });
  }
}

int WorkerOperations::listen_metrics(std::function<std::string()> metrics) {
  reactor::SocketAddress address;
  const std::string& where = runtime_.metrics_address.empty() ? options_.metrics_listen : runtime_.metrics_address;
  if (reactor::parse_address(where, address) != 0) return -EINVAL;
  protocol::WsServerConfig config;
  config.ping_interval_ms = 0;
  config.max_connections = 64;  // scrapers and probes, not clients
  config.max_memory = 16u << 20;
  metrics_server_ = std::make_unique<protocol::WsServer>(loop_, config);
  add_routes(*metrics_server_, std::move(metrics));
  reactor::ListenOptions listen_options;
  listen_options.reuse_port = options_.workers > 1;  // every worker serves its own figures
  int rc = metrics_server_->listen(address, listen_options);
  if (rc != 0) {
    std::fprintf(stderr, "parleyd: cannot listen on --metrics-listen %s: %s\n", options_.metrics_listen.c_str(),
                 std::strerror(-rc));
    return rc;
  }
  log_->info("metrics listening", {{"address", metrics_server_->address().to_string()}});
  return 0;
}

void WorkerOperations::reload() {
  ParleydConfig fresh;
  std::string error;
  if (!load_parleyd_config(runtime_.args, process_environment(), fresh, error)) {
    log_->error("reload failed, configuration unchanged", {{"error", error}});
    return;
  }
  ConfigDiff diff = diff_parleyd_config(options_, fresh.options);
  ParleydOptions applied = options_;
  for (const ConfigChange& change : diff.applied) {
    std::string why;
    set_parleyd_option(*change.spec, change.to, false, applied, why);
  }
  // The secret file's contents may change under the same path (key rotation). It is read from
  // the applied options: turning authentication on or off is a restart (the diff says so), so
  // the running path is the one read again then.
  ChatConfig access;
  if (!chat_access_from_options(applied, access, error)) {
    log_->error("reload failed, configuration unchanged", {{"error", error}});
    return;
  }
  const bool secret_changed = chat_ != nullptr && access.token_secret != chat_->config().token_secret;
  if (server_ != nullptr) {
    server_->set_admission_limits(applied.max_connections, applied.max_connections_per_ip,
                                  applied.max_handshakes_per_ip, applied.max_handshakes);
  }
  if (chat_ != nullptr) {
    ChatConfig live;
    chat_access_from_options(applied, live, error);  // the secret was readable a moment ago
    live.token_secret = access.token_secret;
    chat_->update_limits(live);
  }
  if (echo_gate_ != nullptr) echo_gate_->set_secret(access.token_secret);
  LogLevel level;
  if (parse_log_level(applied.log_level, level)) log_->set_level(level);
  options_ = applied;
  std::string summary = describe_config_diff(diff);
  if (secret_changed) summary += (diff.empty() ? "" : "; ") + std::string("auth-secret contents reloaded");
  if (diff.empty() && secret_changed) summary = "auth-secret contents reloaded";
  log_->info("reloaded", {{"changes", summary}, {"pid", static_cast<int64_t>(getpid())}});
  log_->flush();
}

}  // namespace chat
