// parleyd: the parley server. Serves /chat, /echo, /healthz and /metrics on one port.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "chat/chat_app.h"
#include "chat/parleyd_options.h"
#include "chat/server_metrics.h"
#include "chat/web_routes.h"
#include "protocol/echo_app.h"
#include "protocol/ws_server.h"
#include "reactor/event_loop.h"
#include "reactor/socket_ops.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  chat::ParleydOptions options;
  std::string error;
  if (!chat::parse_parleyd_options(args, options, error)) {
    std::fprintf(stderr, "parleyd: %s\n", error.c_str());
    return 2;
  }
  if (options.show_help) {
    std::fputs(chat::parleyd_usage().c_str(), stdout);
    return 0;
  }
  if (options.show_version) {
    std::printf("parleyd %s\n", chat::kParleyVersion);
    return 0;
  }
  reactor::SocketAddress address;
  if (reactor::parse_address(options.listen, address) != 0) {
    std::fprintf(stderr, "parleyd: invalid --listen '%s' (expected HOST:PORT, e.g. 127.0.0.1:8080)\n",
                 options.listen.c_str());
    return 2;
  }

  reactor::EventLoop loop;
  if (int rc = loop.open(); rc != 0) {
    std::fprintf(stderr, "parleyd: epoll_create1 failed: %s\n", std::strerror(-rc));
    return 1;
  }
  protocol::WsServerConfig config;
  config.max_message_size = options.max_message_size;
  config.handshake_timeout_ms = options.handshake_timeout_ms;
  config.close_timeout_ms = options.close_timeout_ms;
  protocol::WsServer server(loop, config);
  protocol::EchoApp echo(server);
  server.add_websocket_route("/echo", &echo);
  chat::WsServerTransport chat_transport(server);
  chat::ChatConfig chat_config;
  chat_config.history_size = options.history_size;
  chat_config.max_text_bytes = options.max_text_bytes;
  chat_config.max_rooms_per_connection = options.max_rooms_per_connection;
  chat::ChatApp chat_app(chat_transport, chat_config);
  server.add_websocket_route("/chat", &chat_app);
  chat::add_web_routes(server);
  server.add_http_route("/healthz", [](const protocol::HttpRequest&, protocol::HttpReply& reply) {
    reply.body = "ok\n";
  });
  server.add_http_route("/metrics", [&](const protocol::HttpRequest&, protocol::HttpReply& reply) {
    reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
    reply.body = chat::render_metrics(server.stats(), loop.iterations());
  });

  reactor::ListenOptions listen_options;
  listen_options.reuse_port = options.reuse_port;
  if (int rc = server.listen(address, listen_options); rc != 0) {
    std::fprintf(stderr, "parleyd: cannot listen on %s: %s\n", options.listen.c_str(), std::strerror(-rc));
    return 1;
  }
  int signal_rc = loop.watch_signals({SIGINT, SIGTERM}, [&](int signo) {
    std::fprintf(stderr, "parleyd: %s, stopping\n", signo == SIGINT ? "SIGINT" : "SIGTERM");
    loop.stop();
  });
  if (signal_rc != 0) {
    std::fprintf(stderr, "parleyd: cannot watch signals: %s\n", std::strerror(-signal_rc));
    return 1;
  }
  std::printf("listening on %s\n", server.address().to_string().c_str());
  std::fflush(stdout);
  int rc = loop.run();
  if (rc != 0) {
    std::fprintf(stderr, "parleyd: event loop failed: %s\n", std::strerror(-rc));
    return 1;
  }
  return 0;
}
