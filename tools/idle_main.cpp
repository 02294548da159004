// parley-idle: holds N upgraded WebSocket connections open for a bounded time, answering pings
// and reconnecting what it loses; one status line per second, then a summary and a
// machine-readable "summary key=value ..." line. The engine is tools/idle_holder.h.
#include <signal.h>

#include <cstdio>
#include <string>

#include "tools/idle_holder.h"

namespace {

tools::IdleHolder* g_holder = nullptr;

void on_stop_signal(int) {
  if (g_holder != nullptr) g_holder->stop();
}

}  // namespace

int main(int argc, char** argv) {
  tools::IdleOptions options;
  if (int rc = tools::parse_idle_options(argc, argv, options); rc != tools::kIdleOptionsOk) return rc;
  signal(SIGPIPE, SIG_IGN);

  tools::IdleHolder holder(options);
  std::string error;
  if (holder.start(error) != 0) {
    std::fprintf(stderr, "parley-idle: %s\n", error.c_str());
    return 2;
  }
  g_holder = &holder;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  const tools::IdleReport final_report = holder.run([&](const tools::IdleReport& report) {
    if (options.quiet) return;
    std::printf("%s\n", tools::format_idle_report(report).c_str());
    std::fflush(stdout);
  });
  if (!holder.first_tls_error().empty()) {
    std::fprintf(stderr, "parley-idle: first TLS handshake error: %s\n", holder.first_tls_error().c_str());
  }
  const tools::IdleCounters& c = final_report.counters;
  std::printf("parley-idle: held %llu of %u connections to %s at the end (peak %llu); ramp %s; "
              "%llu lost, %llu reconnected, %llu failed attempts, %llu pings answered\n",
              static_cast<unsigned long long>(c.open), options.connections, options.url_text.c_str(),
              static_cast<unsigned long long>(c.peak_open),
              final_report.ramp_ms ? (std::to_string(final_report.ramp_ms) + " ms").c_str() : "incomplete",
              static_cast<unsigned long long>(c.lost), static_cast<unsigned long long>(c.reconnected),
              static_cast<unsigned long long>(c.failed), static_cast<unsigned long long>(c.pings));
  std::printf("%s\n", tools::format_idle_summary(options, final_report).c_str());
  std::fflush(stdout);
  return tools::idle_exit_code(options, final_report);
}
