// parleyd: the parley server. Serves the chat page, /chat, /echo, /healthz and /metrics on one
// port; with --workers N, N processes share the port through SO_REUSEPORT.
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "chat/auth_token.h"
#include "chat/parleyd/config.h"
#include "chat/parleyd/operations.h"
#include "chat/parleyd_options.h"
#include "chat/parleyd_worker.h"
#include "reactor/socket_ops.h"
#include "reactor/tls_context.h"

namespace {

// Below this many fds a server runs out after a few thousand connections (or one slowloris).
constexpr rlim_t kLowFdLimit = 4096;

// Raises the soft RLIMIT_NOFILE to the hard limit: a stock shell's soft limit of 1024 would cap
// parleyd at about a thousand connections while the hard limit allows far more. Says so (one
// line on stderr) when the result is still low. Workers inherit the limit across fork.
void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < kLowFdLimit) {
    std::fprintf(stderr,
                 "parleyd: WARNING: file descriptor limit is %llu (hard limit %llu): at most about that many "
                 "connections per worker; raise it (ulimit -Hn, LimitNOFILE=) for production\n",
                 static_cast<unsigned long long>(limit.rlim_cur), static_cast<unsigned long long>(limit.rlim_max));
  }
}

void print_listening(const reactor::SocketAddress& address) {
  std::printf("listening on %s\n", address.to_string().c_str());
  std::fflush(stdout);
}

// Forks the workers and supervises them: prints the listening line once every worker listens,
// forwards SIGINT/SIGTERM, and exits when all workers have (0 only if all exited 0).
int run_supervisor(const chat::ParleydOptions& options, reactor::SocketAddress address,
                   const reactor::TlsContext* tls, const std::vector<std::string>& args) {
  // A probe socket in the same SO_REUSEPORT group resolves port 0 before the workers bind.
  reactor::ListenOptions probe_options;
  probe_options.reuse_port = true;
  int probe = reactor::listen_tcp(address, probe_options);
  if (probe < 0 || reactor::local_address(probe, address) != 0) {
    std::fprintf(stderr, "parleyd: cannot listen on %s: %s\n", options.listen.c_str(), std::strerror(-probe));
    return 1;
  }
  // The same for --metrics-listen: the workers share that port too.
  int metrics_probe = -1;
  std::string metrics_address;
  if (!options.metrics_listen.empty()) {
    reactor::SocketAddress resolved;
    if (reactor::parse_address(options.metrics_listen, resolved) == 0) {
      metrics_probe = reactor::listen_tcp(resolved, probe_options);
    }
    if (metrics_probe < 0 || reactor::local_address(metrics_probe, resolved) != 0) {
      std::fprintf(stderr, "parleyd: cannot listen on --metrics-listen %s: %s\n", options.metrics_listen.c_str(),
                   std::strerror(-metrics_probe));
      close(probe);
      return 1;
    }
    metrics_address = resolved.to_string();
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGCHLD);
  sigaddset(&signals, SIGHUP);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  int ready[2];
  if (pipe(ready) != 0) return 1;
  std::vector<pid_t> workers;
  for (uint32_t i = 0; i < options.workers; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      close(probe);
      if (metrics_probe >= 0) close(metrics_probe);
      close(ready[0]);
      chat::WorkerRuntime runtime{args, i, true, metrics_address};
      int rc = chat::run_parleyd_worker(options, address, true, [&](const reactor::SocketAddress&) {
        char byte = 1;
        if (write(ready[1], &byte, 1) != 1) _exit(1);
        close(ready[1]);
      }, tls, &runtime);
      _exit(rc);
    }
    if (pid < 0) {
      std::fprintf(stderr, "parleyd: fork failed: %s\n", std::strerror(errno));
      for (pid_t w : workers) kill(w, SIGKILL);
      return 1;
    }
    workers.push_back(pid);
  }
  close(ready[1]);
  size_t listening = 0;
  while (listening < workers.size()) {
    pollfd p{ready[0], POLLIN, 0};
    char byte;
    if (poll(&p, 1, 10000) != 1 || read(ready[0], &byte, 1) != 1) break;
    ++listening;
  }
  close(ready[0]);
  close(probe);  // the workers' sockets now take every connection
  if (metrics_probe >= 0) close(metrics_probe);
  if (listening < workers.size()) {
    std::fprintf(stderr, "parleyd: only %zu of %zu workers started\n", listening, workers.size());
    for (pid_t w : workers) kill(w, SIGKILL);
    while (wait(nullptr) > 0) {
    }
    return 1;
  }
  print_listening(address);
  size_t running = workers.size();
  bool all_clean = true;
  while (running > 0) {
    int signo = 0;
    sigwait(&signals, &signo);
    if (signo == SIGINT || signo == SIGTERM) {
      for (pid_t w : workers) kill(w, signo);
      continue;
    }
    if (signo == SIGHUP) {
      // Checked here first so that a broken file is reported once, not by every worker; each
      // worker then reads the configuration again itself and logs what it changed.
      chat::ParleydConfig fresh;
      std::string error;
      if (!chat::load_parleyd_config(args, chat::process_environment(), fresh, error)) {
        std::fprintf(stderr, "parleyd: reload failed, configuration unchanged: %s\n", error.c_str());
        continue;
      }
      for (pid_t w : workers) kill(w, SIGHUP);
      continue;
    }
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      --running;
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) all_clean = false;
    }
  }
  return all_clean ? 0 : 1;
}

// --check-config: the files the options name must load too (the token secret, TLS).
int check_config(const chat::ParleydConfig& config) {
  const chat::ParleydOptions& options = config.options;
  std::string error;
  if (!options.auth_secret_file.empty()) {
    std::string secret;
    if (!chat::read_token_secret(options.auth_secret_file.c_str(), secret, error)) {
      std::fprintf(stderr, "parleyd: %s\n", error.c_str());
      return 1;
    }
  }
  if (!options.tls_cert_file.empty() &&
      reactor::TlsContext::create(options.tls_cert_file, options.tls_key_file, error) == nullptr) {
    std::fprintf(stderr, "parleyd: %s\n", error.c_str());
    return 1;
  }
  std::fputs(chat::render_effective_config(config).c_str(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  chat::ParleydConfig config;
  std::string error;
  const bool checking = std::find(args.begin(), args.end(), "--check-config") != args.end();
  if (!chat::load_parleyd_config(args, chat::process_environment(), config, error)) {
    std::fprintf(stderr, "parleyd: %s\n", error.c_str());
    return checking ? 1 : 2;
  }
  const chat::ParleydOptions& options = config.options;
  if (options.show_help) {
    std::fputs(chat::parleyd_usage().c_str(), stdout);
    return 0;
  }
  if (options.show_version) {
    std::printf("parleyd %s\n", chat::kParleyVersion);
    return 0;
  }
  if (options.check_config) return check_config(config);
  reactor::SocketAddress address;
  if (reactor::parse_address(options.listen, address) != 0) {  // validated by the table already
    std::fprintf(stderr, "parleyd: invalid --listen '%s'\n", options.listen.c_str());
    return 2;
  }
  // A dead peer must give EPIPE, not kill the daemon (the library already uses MSG_NOSIGNAL;
  // this covers any other write).
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  // Loaded once, before the workers fork: a bad file is one error line, and the workers share
  // the session-ticket keys, so a client resumes with whichever worker the kernel picks.
  std::unique_ptr<reactor::TlsContext> tls;
  if (!options.tls_cert_file.empty()) {
    tls = reactor::TlsContext::create(options.tls_cert_file, options.tls_key_file, error);
    if (tls == nullptr) {
      std::fprintf(stderr, "parleyd: %s\n", error.c_str());
      return 1;
    }
  }
  if (options.workers > 1) return run_supervisor(options, address, tls.get(), args);
  chat::WorkerRuntime runtime{args, 0, false, {}};
  return chat::run_parleyd_worker(options, address, options.reuse_port, print_listening, tls.get(), &runtime);
}
