// embed_example: a host program running parley's chat core in its own process (chat/parley.h).
//
//   build/examples/embed_example --listen 127.0.0.1:9000 --tick-ms 5000
//
// What it shows:
//   - authorize: ws://HOST:PORT/chat?user=NAME identifies the connection as NAME at once (no
//     hello); the name "admin" is refused with 403; without ?user= clients say hello as usual;
//   - on_message: any msg or dm containing "spam" is vetoed (the sender gets error "rejected");
//   - on_custom: {"type":"roll","sides":N} is answered with {"type":"rolled","value":...};
//   - publish from another thread: with --tick-ms, a ticker thread posts "tick N" to room "lobby";
//   - stop from a signal handler: SIGINT/SIGTERM close every connection and return from run().
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "chat/parley.h"

namespace {

parley::Server* g_server = nullptr;

void on_signal(int) {
  // Server::stop() is async-signal-safe.
  if (g_server != nullptr) g_server->stop();
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

}  // namespace

int main(int argc, char** argv) {
  parley::Config config;
  config.listen = "127.0.0.1:8080";
  long tick_ms = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--listen" && i + 1 < argc) {
      config.listen = argv[++i];
    } else if (arg == "--tick-ms" && i + 1 < argc) {
      tick_ms = std::atol(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: embed_example [--listen HOST:PORT] [--tick-ms MS]\n");
      return 2;
    }
  }

  parley::Server* server_ref = nullptr;
  std::mt19937 random(std::random_device{}());
  parley::Hooks hooks;
  hooks.authorize = [](const parley::Handshake& handshake) {
    parley::Authorization answer;
    std::string_view user = handshake.query_param("user");
    if (user == "admin") {
      answer.accept = false;
      answer.status = 403;
      answer.reason = "that name is reserved";
      return answer;
    }
    answer.user = std::string(user);
    return answer;
  };
  hooks.on_message = [](const parley::Message& message) {
    return message.text.find("spam") == std::string_view::npos;
  };
  hooks.on_custom = [&](const parley::CustomMessage& message) {
    if (message.type != "roll") return false;
    int value = std::uniform_int_distribution<int>(1, sides_of(message.json))(random);
    server_ref->send(message.client, "{\"type\":\"rolled\",\"value\":" + std::to_string(value) + "}");
    return true;
  };

  parley::Server server(config, hooks);
  server_ref = &server;
  if (int rc = server.start(); rc != 0) {
    std::fprintf(stderr, "embed_example: cannot listen on %s: %s\n", config.listen.c_str(), std::strerror(-rc));
    return 1;
  }
  g_server = &server;
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  std::mutex mutex;
  std::condition_variable wake;
  bool done = false;
  std::thread ticker;
  if (tick_ms > 0) {
    ticker = std::thread([&] {
      std::unique_lock<std::mutex> lock(mutex);
      for (int n = 1; !wake.wait_for(lock, std::chrono::milliseconds(tick_ms), [&] { return done; }); ++n) {
        server.publish("lobby", "tick " + std::to_string(n), "clock");
      }
    });
  }

  std::printf("listening on %s\n", server.address().c_str());
  std::fflush(stdout);
  int rc = server.run();
  g_server = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
  }
  wake.notify_all();
  if (ticker.joinable()) ticker.join();
  if (rc != 0) {
    std::fprintf(stderr, "embed_example: %s\n", std::strerror(-rc));
    return 1;
  }
  std::fprintf(stderr, "embed_example: stopped\n");
  return 0;
}
