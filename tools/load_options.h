#pragma once
// parley-load's command line: scenarios and their knobs, parsed and validated in one place.
#include <cstdint>
#include <string>
#include <vector>

#include "reactor/tls_context.h"
#include "tools/ws_url.h"

namespace tools {

enum class Scenario : uint8_t {
  kEcho,     // N connections exchanging echo messages, closed or open loop
  kConnect,  // handshakes per second: connect, upgrade, close, repeat
  kBroadcast,  // chat fan-out: subscribers in one room, publishers sending msg, publish-to-receipt latency
  kChat,       // simulated chat users: several rooms, talking, idling and reconnecting
  kIdle,       // hold upgraded connections and answer pings (tools/idle_holder.h's engine)
};

// The per-process file-descriptor limit here is 20,000 and cannot be raised; leave headroom for
// the epoll fd, pipes and stdio.
inline constexpr uint64_t kMaxConnectionsPerProcess = 19'000;

struct LoadOptions {
  Scenario scenario = Scenario::kEcho;
  std::string url_text = "ws://127.0.0.1:8080/echo";  // broadcast, chat: .../chat unless --url is given
  WsUrl url;
  reactor::TlsClientOptions tls;  // wss://: --insecure, --ca-file
  uint64_t connections = 100;  // echo, idle: connections held; connect: concurrent connectors;
                               // broadcast: subscribers; chat: users
  uint64_t rate = 0;           // echo, broadcast, chat: messages/s in total (0 = closed loop; chat: always
                               // open loop, default one message per user per second)
  double duration_s = 5;       // measured time, after the warmup
  double warmup_s = 0;         // excluded from the statistics
  uint64_t size = 20;          // payload bytes per message
  bool binary = false;         // binary frames (default text)
  uint64_t pipeline = 1;       // closed loop: messages in flight per connection (broadcast: per publisher)
  uint64_t max_in_flight = 64; // open loop: per-connection cap; sends past it wait (and count)
  uint64_t ramp = 0;           // new connections per second in total (0 = as fast as possible)
  uint64_t sources = 64;       // 127.0.0.x source addresses when the target is loopback
  uint64_t processes = 1;      // -j: worker processes
  bool close_handshake = false;  // connect: send a close frame and wait for the server's
  uint64_t publishers = 1;     // broadcast: publishing connections, all in worker 0
  std::string room;            // broadcast: the room; chat: the rooms' prefix (<room>-<k>);
                               // empty = "load-<run tag>", fresh each run
  uint64_t rooms = 10;         // chat: rooms in all
  uint64_t rooms_per_user = 2; // chat: rooms each user joins (<= rooms)
  double idle_share = 0;       // chat: share of seconds (0-1) in which a user sends nothing
  double reconnect_share = 0;  // chat: share of users (0-1) that disconnect once and come back
  bool reconnect_abrupt = false;  // chat: a planned reconnect drops TCP (RST, no close frame)
  // --server-pid PID[,PID...]: sample these processes' CPU time over the measurement (none =
  // no figures); several when the server is several processes (workers, Redis), summed.
  std::vector<int> server_pids;
  bool progress = true;        // a progress line every second
  std::string json_path;       // --json FILE ("-" = stdout)
};

// parse_load_options() result meaning "run": anything else is an exit code.
inline constexpr int kOptionsOk = -1;

// Parses argv into `out`. Returns kOptionsOk to go on, otherwise the exit code to leave with
// (0 after --help, 2 on a bad option, with a one-line message on stderr).
int parse_load_options(int argc, char** argv, LoadOptions& out);

// Prints the usage text to stdout.
void print_load_usage();

// The most processes --server-pid may list.
inline constexpr size_t kMaxServerPids = 16;

// The longest room name docs/protocol.md allows.
inline constexpr size_t kMaxRoomName = 64;
// Chat: the most rooms a run may spread its users over.
inline constexpr uint64_t kMaxChatRooms = 100'000;

// "echo" / "connect" / "broadcast" / "chat" / "idle".
const char* scenario_name(Scenario scenario);

}  // namespace tools
