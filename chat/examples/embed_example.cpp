// embed_example: a product embedding parley's chat core in its own process (chat/parley.h), as
// a web application with its own sign-in would.
//
//   build/examples/embed_example --listen 127.0.0.1:9000 --guests --tick-ms 5000
//       --session s3cr3t=alice --session m0d=maria:moderator   (one line)
//
// What it shows:
//   - auth by the host's own session check: the product's login sets a cookie `sid`; the
//     browser sends it with the WebSocket upgrade (same origin), and authorize looks it up in
//     the host's session table (here filled by --session SID=NAME[:moderator]). A known
//     session identifies the connection at once (welcome, no hello); an unknown one gets 401.
//     Without a cookie, --guests lets visitors in to pick a name with hello; otherwise 401.
//   - reserved names: allow_name keeps "admin", "system", "moderator" and "staff-*" for the
//     product, on every path (hello, session); a guest's hello as admin gets invalid_name.
//   - moderation via kick: a moderator's "/kick NAME" in any room closes NAME's connection
//     with 4000 "kicked by a moderator" (a host call from a hook: it acts at once).
//   - content policy: on_message vetoes texts containing "spam" (the sender gets "rejected").
//   - host announcements: with --tick-ms, a thread of the host publishes "tick N" to room
//     "lobby" as "clock"; on_join welcomes each newcomer with a direct notice.
//   - who is online: SIGUSR1 prints users and rooms (host calls from another thread).
//   - stop from a signal handler: SIGINT/SIGTERM close every connection and return from run().
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "chat/parley.h"

namespace {

parley::Server* g_server = nullptr;
std::atomic<bool> g_report{false};

void on_signal(int signo) {
  if (signo == SIGUSR1) {
    g_report = true;  // printed by the reporter thread: host calls are not async-signal-safe
    return;
  }
  // Server::stop() is async-signal-safe.
  if (g_server != nullptr) g_server->stop();
}

// A signed-in user of the product.
struct Account {
  std::string name;
  bool moderator = false;
};

// The value of cookie `name` in a Cookie header ("a=1; sid=xyz"), empty when absent.
std::string_view cookie(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    size_t end = header.find(';');
    std::string_view pair = header.substr(0, end);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name && pair[name.size()] == '=') {
      return pair.substr(name.size() + 1);
    }
    if (end == std::string_view::npos) break;
    header.remove_prefix(end + 1);
  }
  return {};
}

// The value of "sides" in a small JSON object, or 6. A real host would use a JSON parser.
int sides_of(std::string_view json) {
  size_t at = json.find("\"sides\"");
  if (at == std::string_view::npos) return 6;
  at = json.find(':', at);
  if (at == std::string_view::npos) return 6;
  int sides = std::atoi(std::string(json.substr(at + 1, 8)).c_str());
  return sides >= 2 && sides <= 1000 ? sides : 6;
}

void print_joined(const char* label, const std::vector<std::string>& names) {
  std::string line;
  for (const std::string& name : names) line += (line.empty() ? "" : " ") + name;
  std::printf("%s: %s\n", label, line.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  parley::Config config;
  config.listen = "127.0.0.1:8080";
  long tick_ms = 0;
  bool guests = false;
  std::map<std::string, Account, std::less<>> sessions;  // sid -> account: the product's table
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--listen" && i + 1 < argc) {
      config.listen = argv[++i];
    } else if (arg == "--tick-ms" && i + 1 < argc) {
      tick_ms = std::atol(argv[++i]);
    } else if (arg == "--guests") {
      guests = true;
    } else if (arg == "--session" && i + 1 < argc) {
      std::string spec = argv[++i];
      size_t equals = spec.find('=');
      if (equals == std::string::npos) {
        std::fprintf(stderr, "embed_example: --session SID=NAME[:moderator]\n");
        return 2;
      }
      Account account{spec.substr(equals + 1), false};
      if (size_t colon = account.name.find(':'); colon != std::string::npos) {
        account.moderator = account.name.substr(colon + 1) == "moderator";
        account.name.resize(colon);
      }
      sessions[spec.substr(0, equals)] = account;
    } else {
      std::fprintf(stderr,
                   "usage: embed_example [--listen HOST:PORT] [--session SID=NAME[:moderator]]... [--guests] "
                   "[--tick-ms MS]\n");
      return 2;
    }
  }

  parley::Server* host = nullptr;
  std::mt19937 random(std::random_device{}());
  parley::Hooks hooks;
  hooks.authorize = [&](const parley::Handshake& handshake) {
    parley::Authorization answer;
    std::string_view sid = cookie(handshake.header("Cookie"), "sid");
    if (auto found = sessions.find(sid); !sid.empty() && found != sessions.end()) {
      answer.user = found->second.name;  // still goes through allow_name
      return answer;
    }
    if (sid.empty() && guests) return answer;  // a guest: picks a name with hello
    answer.accept = false;
    answer.status = 401;
    answer.reason = sid.empty() ? "sign in to the product first" : "your session has ended; sign in again";
    return answer;
  };
  hooks.allow_name = [&](std::string_view name) -> std::string {
    if (name == "admin" || name == "system" || name == "moderator" || name.rfind("staff-", 0) == 0) {
      return "'" + std::string(name) + "' is reserved";
    }
    return {};
  };
  hooks.on_message = [&](const parley::Message& message) {
    if (message.text.rfind("/kick ", 0) == 0) {
      bool moderator = false;
      for (const auto& [sid, account] : sessions) moderator |= account.name == message.user && account.moderator;
      if (moderator) host->kick_user(message.text.substr(6), 4000, "kicked by a moderator");
      return false;  // a command, never shown to the room
    }
    return message.text.find("spam") == std::string_view::npos;
  };
  hooks.on_custom = [&](const parley::CustomMessage& message) {
    if (message.type != "roll") return false;
    int value = std::uniform_int_distribution<int>(1, sides_of(message.json))(random);
    host->send(message.client, "{\"type\":\"rolled\",\"value\":" + std::to_string(value) + "}");
    return true;
  };
  hooks.on_join = [&](const parley::RoomEvent& event) {
    host->send(event.client, "{\"type\":\"notice\",\"text\":\"welcome to " + std::string(event.room) + "\"}");
  };
  hooks.on_connect = [](const parley::Client& c) { std::fprintf(stderr, "embed_example: %.*s online\n",
                                                                 static_cast<int>(c.user.size()), c.user.data()); };
  hooks.on_disconnect = [](const parley::Client& c) {
    std::fprintf(stderr, "embed_example: %.*s offline (%u)\n", static_cast<int>(c.user.size()), c.user.data(),
                 static_cast<unsigned>(c.code));
  };

  parley::Server server(config, hooks);
  host = &server;
  if (int rc = server.start(); rc != 0) {
    std::fprintf(stderr, "embed_example: %s\n", server.error().empty() ? std::strerror(-rc) : server.error().c_str());
    return 1;
  }
  g_server = &server;
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGUSR1, &action, nullptr);

  std::mutex mutex;
  std::condition_variable wake;
  bool done = false;
  // Host threads: announcements, and the SIGUSR1 report of who is online.
  std::thread ticker([&] {
    std::unique_lock<std::mutex> lock(mutex);
    auto period = std::chrono::milliseconds(tick_ms > 0 ? tick_ms : 50);
    for (int n = 1; !wake.wait_for(lock, period, [&] { return done; });) {
      if (g_report.exchange(false)) {
        print_joined("users", server.users());
        print_joined("rooms", server.rooms());
        std::fflush(stdout);
      }
      if (tick_ms > 0) server.publish("lobby", "tick " + std::to_string(n++), "clock");
    }
  });

  std::printf("listening on %s\n", server.address().c_str());
  std::fflush(stdout);
  int rc = server.run();
  g_server = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
  }
  wake.notify_all();
  ticker.join();
  if (rc != 0) {
    std::fprintf(stderr, "embed_example: %s\n", std::strerror(-rc));
    return 1;
  }
  std::fprintf(stderr, "embed_example: stopped\n");
  return 0;
}
