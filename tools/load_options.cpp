#include "tools/load_options.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "chat/chat_codec.h"

namespace tools {
namespace {

bool parse_count(std::string_view text, uint64_t& out) {
  uint64_t multiplier = 1;
  if (!text.empty() && (text.back() == 'k' || text.back() == 'K')) {
    multiplier = 1000;
    text.remove_suffix(1);
  } else if (!text.empty() && (text.back() == 'm' || text.back() == 'M')) {
    multiplier = 1'000'000;
    text.remove_suffix(1);
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return false;
  out = value * multiplier;
  return true;
}

bool parse_seconds(std::string_view text, double& out) {
  std::string copy(text);
  char* end = nullptr;
  double value = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size() || !std::isfinite(value) || value < 0) return false;
  out = value;
  return true;
}

int fail(const char* message, std::string_view detail = "") {
  const std::string text(detail);
  std::fprintf(stderr, "parley-load: %s%s (see --help)\n", message, text.c_str());
  return 2;
}

}  // namespace

const char* scenario_name(Scenario scenario) {
  switch (scenario) {
    case Scenario::kEcho: return "echo";
    case Scenario::kConnect: return "connect";
    case Scenario::kBroadcast: return "broadcast";
    case Scenario::kChat: return "chat";
    case Scenario::kIdle: return "idle";
  }
  return "echo";
}

void print_load_usage() {
  std::puts(
      "usage: parley-load [echo|connect|broadcast|chat|idle] [options]\n"
      "\n"
      "Scenarios:\n"
      "  echo      hold -c connections and exchange echo messages with the server; closed loop\n"
      "            (--pipeline D messages in flight per connection) or open loop (--rate R msg/s\n"
      "            in total, latency measured from each message's intended send time)\n"
      "  connect   handshakes per second: -c concurrent connectors each connect, upgrade and\n"
      "            close (a close frame with --close, else a plain TCP close), over and over\n"
      "  broadcast chat fan-out on /chat: -c subscribers and --publishers P say hello and join one\n"
      "            room; once every subscriber has joined (and --warmup has passed), the publishers\n"
      "            send msg for --duration, at --rate R msg/s in total (open loop) or with --pipeline D\n"
      "            unacknowledged per publisher; each text carries its send time, and subscribers\n"
      "            record publish-to-receipt latency and count deliveries against published x joined\n"
      "  chat      simulated users on /chat: -c users say hello with unique names and each join\n"
      "            --rooms-per-user K of --rooms R rooms; once all have joined (and --warmup has\n"
      "            passed) they talk for --duration, open loop, at --rate msg/s in total or\n"
      "            --user-rate msg/s each (default 1), to their rooms in turn; in a share of the\n"
      "            seconds a user is idle (--idle-share), and a share of users (--reconnect-share)\n"
      "            close once during the run and come back (hello, joins: presence left/joined).\n"
      "            Measures publish-to-receipt latency, sent/acked/refused, deliveries, reconnects;\n"
      "            a delivery of a user's own message, or for a room it did not join, is an error.\n"
      "            Deliveries are checked exactly against the acks (each ack: the room's members\n"
      "            but the sender) only without reconnects and with every user joined; a user away\n"
      "            misses what was sent meanwhile, and which messages those were cannot be known\n"
      "            here, so with reconnects the count is only checked as an upper bound\n"
      "  idle      hold -c upgraded connections (parley-idle's engine), answering pings and\n"
      "            reconnecting what is lost; reports open, lost, reconnected and pings answered\n"
      "            over --duration after the ramp (and --warmup)\n"
      "\n"
      "Options:\n"
      "  --url ws://HOST:PORT/PATH  server (default ws://127.0.0.1:8080/echo, broadcast and chat\n"
      "                    .../chat; numeric host); wss://HOST:PORT/PATH for TLS, the server's\n"
      "                    certificate verified against the system's trusted CAs and the host\n"
      "  --ca-file FILE    wss://: trust the certificates in this PEM file instead (e.g. a\n"
      "                    self-signed build/certs/cert.pem)\n"
      "  -k, --insecure    wss://: do not verify the server's certificate (tests only)\n"
      "  -c N              connections (echo, idle), concurrent connectors (connect), subscribers\n"
      "                    (broadcast) or users (chat); default 100\n"
      "  --duration S      measured seconds (default 5; fractions allowed); idle: the hold\n"
      "  --warmup S        seconds before the measurement, excluded from statistics (default 0);\n"
      "                    broadcast, chat: seconds between the last join and the first message;\n"
      "                    idle: the first seconds of the hold\n"
      "  --size BYTES      payload per message (broadcast, chat: text, at least its t=<ns>; stamp;\n"
      "                    default 20)\n"
      "  --binary|--text   frame type (default text)\n"
      "  --pipeline D      closed loop: messages in flight per connection (default 1)\n"
      "  --rate R          open loop: messages per second in total, paced per connection\n"
      "  --max-in-flight N open loop: per-connection cap; later sends wait, latency still\n"
      "                    counts from the intended time (default 64)\n"
      "  --ramp R          new connections per second in total (default: as fast as possible;\n"
      "                    idle: connection attempts per second, reconnects included)\n"
      "  --sources N       spread source addresses over N 127.0.0.x when the target is loopback\n"
      "                    (1-250, default 64)\n"
      "  --close           connect: close with a close frame and wait for the server's\n"
      "  --publishers P    broadcast: publishing connections, all in the first worker (default 1)\n"
      "  --room NAME       broadcast: the room; chat: the rooms are NAME-0, NAME-1, ... (default\n"
      "                    load-<run tag>, fresh every run)\n"
      "  --rooms R         chat: rooms in all (default 10)\n"
      "  --rooms-per-user K  chat: rooms each user joins, consecutive ones (default 2)\n"
      "  --user-rate X     chat: messages per second per user (default 1; or --rate in total)\n"
      "  --idle-share F    chat: share of seconds (0 to <1) in which a user sends nothing (default 0)\n"
      "  --reconnect-share F  chat: share of users (0-1) that close and come back once (default 0)\n"
      "  --reconnect-abrupt  chat: those users drop the TCP connection (no close frame, messages\n"
      "                    in flight) instead of a close handshake; unacked msg are resent anyway\n"
      "  --server-pid PID[,PID...]  report the CPU time (/proc/PID/stat) of that process, or the sum\n"
      "                    of those (up to 16: workers, Redis; each in --json), over the measurement\n"
      "  -j N              worker processes, at most 19000 connections each (default 1)\n"
      "  --json FILE       write the results as JSON (\"-\" for stdout)\n"
      "  --quiet           no per-second progress lines\n"
      "\n"
      "Counts take k/M suffixes. Exit status: 0 without errors, 1 with errors, 2 on bad usage.");
}

int parse_load_options(int argc, char** argv, LoadOptions& o) {
  bool rate_set = false;
  bool url_set = false;
  bool pipeline_set = false;
  double user_rate = -1;  // --user-rate; negative = not given
  bool rooms_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    bool has_inline = false;
    if (arg.starts_with("--")) {
      if (size_t eq = arg.find('='); eq != std::string_view::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_inline = true;
      }
    }
    auto need = [&](std::string_view& v) {
      if (has_inline) {
        v = value;
        return true;
      }
      if (i + 1 >= argc) return false;
      v = argv[++i];
      return true;
    };
    auto count = [&](uint64_t& target) {
      std::string_view v;
      return need(v) && parse_count(v, target);
    };
    auto seconds = [&](double& target) {
      std::string_view v;
      return need(v) && parse_seconds(v, target);
    };
    bool ok = true;
    if (arg == "--help" || arg == "-h") {
      print_load_usage();
      return 0;
    } else if (arg == "echo" && i == 1) {
      o.scenario = Scenario::kEcho;
    } else if (arg == "connect" && i == 1) {
      o.scenario = Scenario::kConnect;
    } else if (arg == "broadcast" && i == 1) {
      o.scenario = Scenario::kBroadcast;
    } else if (arg == "chat" && i == 1) {
      o.scenario = Scenario::kChat;
    } else if (arg == "idle" && i == 1) {
      o.scenario = Scenario::kIdle;
    } else if (arg == "--url") {
      std::string_view v;
      ok = need(v);
      o.url_text = std::string(v);
      url_set = true;
    } else if (arg == "--insecure" || arg == "-k") {
      o.tls.insecure = true;
    } else if (arg == "--ca-file") {
      std::string_view v;
      ok = need(v) && !v.empty();
      o.tls.ca_file = std::string(v);
    } else if (arg == "-c" || arg == "--connections") {
      ok = count(o.connections);
    } else if (arg == "--rate") {
      ok = count(o.rate);
      rate_set = true;
    } else if (arg == "--duration") {
      ok = seconds(o.duration_s);
    } else if (arg == "--warmup") {
      ok = seconds(o.warmup_s);
    } else if (arg == "--size") {
      ok = count(o.size);
    } else if (arg == "--binary") {
      o.binary = true;
    } else if (arg == "--text") {
      o.binary = false;
    } else if (arg == "--pipeline") {
      ok = count(o.pipeline);
      pipeline_set = true;
    } else if (arg == "--max-in-flight") {
      ok = count(o.max_in_flight);
    } else if (arg == "--ramp") {
      ok = count(o.ramp);
    } else if (arg == "--sources") {
      ok = count(o.sources);
    } else if (arg == "-j" || arg == "--processes") {
      ok = count(o.processes);
    } else if (arg == "--close") {
      o.close_handshake = true;
    } else if (arg == "--publishers") {
      ok = count(o.publishers);
    } else if (arg == "--room") {
      std::string_view v;
      ok = need(v) && chat::is_valid_room_name(v);
      o.room = std::string(v);
    } else if (arg == "--rooms") {
      ok = count(o.rooms);
      rooms_set = true;
    } else if (arg == "--rooms-per-user") {
      ok = count(o.rooms_per_user);
      rooms_set = true;
    } else if (arg == "--user-rate") {
      ok = seconds(user_rate) && user_rate > 0;
    } else if (arg == "--idle-share") {
      ok = seconds(o.idle_share) && o.idle_share < 1;
    } else if (arg == "--reconnect-share") {
      ok = seconds(o.reconnect_share) && o.reconnect_share <= 1;
    } else if (arg == "--reconnect-abrupt") {
      o.reconnect_abrupt = true;
      rooms_set = true;
    } else if (arg == "--server-pid") {
      std::string_view v;
      ok = need(v) && !v.empty();
      o.server_pids.clear();
      while (ok && !v.empty()) {
        const size_t comma = v.find(',');
        uint64_t pid = 0;
        ok = parse_count(v.substr(0, comma), pid) && pid != 0 && pid <= 0x7fffffff &&
             o.server_pids.size() < kMaxServerPids;
        o.server_pids.push_back(static_cast<int>(pid));
        v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
        if (comma != std::string_view::npos && v.empty()) ok = false;  // "1," names no process
      }
    } else if (arg == "--json") {
      std::string_view v;
      ok = need(v) && !v.empty();
      o.json_path = std::string(v);
    } else if (arg == "--quiet" || arg == "-q") {
      o.progress = false;
    } else {
      return fail("unknown option ", arg);
    }
    if (!ok) return fail("bad or missing value for ", arg);
  }
  const bool chat = o.scenario == Scenario::kChat;
  if ((o.scenario == Scenario::kBroadcast || chat) && !url_set) o.url_text = "ws://127.0.0.1:8080/chat";
  if (!parse_ws_url(o.url_text, o.url)) return fail("cannot parse --url ", o.url_text);
  if (!o.url.secure && (o.tls.insecure || !o.tls.ca_file.empty())) {
    return fail("--insecure and --ca-file apply to wss:// URLs only: ", o.url_text);
  }
  if (o.connections == 0) return fail("-c must be at least 1");
  if (o.processes == 0 || o.processes > 256) return fail("-j must be 1-256");
  if (o.processes > o.connections) o.processes = o.connections;
  if ((o.connections + o.processes - 1) / o.processes > kMaxConnectionsPerProcess) {
    return fail("more than 19000 connections per process; raise -j");
  }
  if (o.scenario == Scenario::kBroadcast) {
    if (o.publishers == 0 || o.publishers > 1000) return fail("--publishers must be 1-1000");
    // Publishers live in the first worker, next to its share of the subscribers.
    if ((o.connections + o.processes - 1) / o.processes + o.publishers > kMaxConnectionsPerProcess) {
      return fail("more than 19000 connections in the first process (subscribers + publishers); raise -j");
    }
  }
  if (chat) {
    if (pipeline_set) return fail("chat is open loop: --rate or --user-rate, not --pipeline");
    if (rate_set && user_rate >= 0) return fail("--rate and --user-rate exclude each other");
    if (o.rooms == 0 || o.rooms > kMaxChatRooms) return fail("--rooms must be 1-100000");
    if (o.rooms_per_user == 0 || o.rooms_per_user > o.rooms) return fail("--rooms-per-user must be 1 to --rooms");
    if (o.reconnect_abrupt && o.reconnect_share == 0) return fail("--reconnect-abrupt needs --reconnect-share");
    // Room names are <prefix>-<index>, within docs/protocol.md's 64 bytes.
    if (!o.room.empty() && o.room.size() + 1 + std::to_string(o.rooms - 1).size() > kMaxRoomName) {
      return fail("--room is too long for the room names <room>-<index> (64 bytes)");
    }
    if (!rate_set) {
      const double total = (user_rate >= 0 ? user_rate : 1.0) * static_cast<double>(o.connections);
      o.rate = std::max<uint64_t>(1, static_cast<uint64_t>(std::llround(total)));
    }
  } else if (rooms_set || user_rate >= 0 || o.idle_share != 0 || o.reconnect_share != 0) {
    return fail(
        "--rooms, --rooms-per-user, --user-rate, --idle-share, --reconnect-share and --reconnect-abrupt are for the "
        "chat scenario");
  }
  if (o.scenario == Scenario::kIdle && (rate_set || pipeline_set)) {
    return fail("idle sends no messages: no --rate or --pipeline (--ramp paces the connects)");
  }
  if (o.duration_s <= 0) return fail("--duration must be positive");
  if (o.duration_s + o.warmup_s > 86400) return fail("--duration plus --warmup must be under a day");
  if (o.size > (uint64_t{64} << 20)) return fail("--size must be at most 64M");
  if (o.pipeline == 0 || o.pipeline > 4096) return fail("--pipeline must be 1-4096");
  if (o.max_in_flight == 0 || o.max_in_flight > 4096) return fail("--max-in-flight must be 1-4096");
  if (rate_set && o.rate == 0) return fail("--rate must be positive");
  // Broadcast publishers all live in the first worker, so its rate is not split.
  if (o.scenario != Scenario::kBroadcast && o.rate != 0 && o.rate < o.processes) {
    return fail("--rate must be at least -j");
  }
  if (o.sources == 0 || o.sources > 250) return fail("--sources must be 1-250");
  return kOptionsOk;
}

}  // namespace tools
