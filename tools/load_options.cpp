#include "tools/load_options.h"

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
  }
  return "echo";
}

void print_load_usage() {
  std::puts(
      "usage: parley-load [echo|connect|broadcast] [options]\n"
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
      "\n"
      "Options:\n"
      "  --url ws://HOST:PORT/PATH  server (default ws://127.0.0.1:8080/echo; numeric host)\n"
      "  -c N              connections (echo), concurrent connectors (connect) or subscribers\n"
      "                    (broadcast); default 100\n"
      "  --duration S      measured seconds (default 5; fractions allowed)\n"
      "  --warmup S        seconds before the measurement, excluded from statistics (default 0);\n"
      "                    broadcast: seconds between the last join and the first publish\n"
      "  --size BYTES      payload per message (broadcast: text, at least its t=<ns>; stamp; default 20)\n"
      "  --binary|--text   frame type (default text)\n"
      "  --pipeline D      closed loop: messages in flight per connection (default 1)\n"
      "  --rate R          open loop: messages per second in total, paced per connection\n"
      "  --max-in-flight N open loop: per-connection cap; later sends wait, latency still\n"
      "                    counts from the intended time (default 64)\n"
      "  --ramp R          new connections per second in total (default: as fast as possible)\n"
      "  --sources N       spread source addresses over N 127.0.0.x when the target is loopback\n"
      "                    (1-250, default 64)\n"
      "  --close           connect: close with a close frame and wait for the server's\n"
      "  --publishers P    broadcast: publishing connections, all in the first worker (default 1)\n"
      "  --room NAME       broadcast: the room (default load-<run tag>, a fresh room every run)\n"
      "  --server-pid PID  report that process's CPU time (/proc/PID/stat) over the measurement\n"
      "  -j N              worker processes, at most 19000 connections each (default 1)\n"
      "  --json FILE       write the results as JSON (\"-\" for stdout)\n"
      "  --quiet           no per-second progress lines\n"
      "\n"
      "Counts take k/M suffixes. Exit status: 0 without errors, 1 with errors, 2 on bad usage.");
}

int parse_load_options(int argc, char** argv, LoadOptions& o) {
  bool rate_set = false;
  bool url_set = false;
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
    } else if (arg == "--url") {
      std::string_view v;
      ok = need(v);
      o.url_text = std::string(v);
      url_set = true;
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
    } else if (arg == "--server-pid") {
      uint64_t pid = 0;
      ok = count(pid) && pid != 0 && pid <= 0x7fffffff;
      o.server_pid = static_cast<int>(pid);
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
  if (o.scenario == Scenario::kBroadcast && !url_set) o.url_text = "ws://127.0.0.1:8080/chat";
  if (!parse_ws_url(o.url_text, o.url)) return fail("cannot parse --url ", o.url_text);
  if (o.url.secure) return fail("wss:// is not supported: ", o.url_text);
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
