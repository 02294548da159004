// The chat core's hot paths without syscalls:
//  - RoomJoinLeave: one leave plus one join of a random member of a room of 1k / 10k members
//    (swap-remove, both slot fix-ups, membership list upkeep). `ns_per_op` is per join or leave.
//  - RoomMessageFanout: a client `msg` through ChatApp::on_message (parse, seq, history, encode
//    once into one SharedBuffer, hand it to every other member, ack) against a transport that
//    only counts. `ns_per_delivery` is the whole cost divided by the frames handed out.
//  - PublishFanout: the same without parsing or ack (ChatApp::publish, host-side posts).
//  - RoomFill: hello + join of N users into one room, from empty (issue 18). Arg 2 = 0: every
//    join told to every member at once (before issue 18; also the app without a loop), O(N^2)
//    frames; 1: batched presence, the batch told every 100 joins (a 50 ms tick at 2,000 joins/s).
//    `fill_ms` is the CPU of one whole fill, `frames` the frames handed out.
// The clock is this thread's CPU time (UseManualTime), as in the other benchmarks here: the
// machines' cores are shared and time spent preempted says nothing about the code.
#include <time.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "chat/chat_app.h"
#include "chat/chat_session.h"
#include "chat/room.h"
#include "reactor/event_loop.h"

namespace {

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

protocol::ConnectionId make_id(uint32_t fd) { return fd | uint64_t{1} << 32; }

void RoomJoinLeave(benchmark::State& state) {
  const auto members = static_cast<uint32_t>(state.range(0));
  chat::SessionPool pool;
  chat::RoomTable rooms(pool, 50);
  std::vector<uint32_t> sessions;
  for (uint32_t i = 0; i < members; ++i) {
    uint32_t s = pool.acquire();
    pool.get(s).connection = make_id(i + 10);
    pool.get(s).set_name("user" + std::to_string(i));
    // Every member is also in a few other rooms, so memberships sit at varying indices.
    for (uint32_t k = 0; k < i % 4; ++k) rooms.join(s, "side" + std::to_string(k), 32);
    rooms.join(s, "big", 32);
    sessions.push_back(s);
  }
  std::mt19937 random(42);
  std::vector<uint32_t> order(4096);
  for (uint32_t& index : order) index = sessions[random() % sessions.size()];
  size_t next = 0;
  constexpr int kBatch = 1024;
  double total = 0;
  for (auto _ : state) {
    double start = cpu_seconds();
    for (int i = 0; i < kBatch; ++i) {
      uint32_t s = order[next++ & (order.size() - 1)];
      rooms.leave(s, "big");
      rooms.join(s, "big", 32);
    }
    double elapsed = cpu_seconds() - start;
    total += elapsed;
    state.SetIterationTime(elapsed);
  }
  state.counters["ns_per_op"] = total * 1e9 / (static_cast<double>(state.iterations()) * kBatch * 2);
  std::string why;
  if (!rooms.check_invariants(&why)) state.SkipWithError(why.c_str());
}
BENCHMARK(RoomJoinLeave)->Arg(1000)->Arg(10000)->UseManualTime();

// Counts deliveries; touches the frame like a write queue would (one reference held and dropped).
class CountingTransport final : public chat::ChatTransport {
 public:
  protocol::SendResult send_text(protocol::ConnectionId, std::string_view text) override {
    texts += 1;
    bytes += text.size();
    return protocol::SendResult::kSent;
  }
  protocol::SendResult send_encoded(protocol::ConnectionId, reactor::SharedBuffer* frame) override {
    frame->retain();
    frame->release();
    frames += 1;
    return protocol::SendResult::kBuffered;
  }
  void close(protocol::ConnectionId, uint16_t, std::string_view) override {}
  uint64_t texts = 0;
  uint64_t frames = 0;
  uint64_t bytes = 0;
};

// A ChatApp with `members` identified users in room "big".
struct FilledApp {
  explicit FilledApp(uint32_t members) : app(transport) {
    for (uint32_t i = 0; i < members; ++i) {
      protocol::ConnectionId id = make_id(i + 10);
      app.on_open(id);
      send(id, R"({"type":"hello","name":"user)" + std::to_string(i) + R"("})");
      send(id, R"({"type":"join","room":"big"})");
    }
    transport.frames = 0;
  }
  void send(protocol::ConnectionId id, std::string text) {
    app.on_message(id, protocol::Opcode::kText, {reinterpret_cast<uint8_t*>(text.data()), text.size()});
  }
  CountingTransport transport;
  chat::ChatApp app;
};

void RoomMessageFanout(benchmark::State& state) {
  const auto members = static_cast<uint32_t>(state.range(0));
  FilledApp filled(members);
  std::string message = R"({"type":"msg","room":"big","text":")" + std::string(100, 'x') + R"(","id":"m"})";
  std::vector<uint8_t> bytes(message.begin(), message.end());
  const int batch = members >= 1000 ? 16 : 256;
  double total = 0;
  for (auto _ : state) {
    double start = cpu_seconds();
    for (int i = 0; i < batch; ++i) {
      // on_message may modify the payload in place (WsApplication contract): restore it.
      std::copy(message.begin(), message.end(), bytes.begin());
      filled.app.on_message(make_id(10), protocol::Opcode::kText, {bytes.data(), bytes.size()});
    }
    double elapsed = cpu_seconds() - start;
    total += elapsed;
    state.SetIterationTime(elapsed);
  }
  const double deliveries = static_cast<double>(filled.transport.frames);
  if (deliveries != static_cast<double>(state.iterations()) * batch * (members - 1)) {
    state.SkipWithError("wrong number of deliveries");
  }
  state.counters["deliveries"] = deliveries;
  state.counters["ns_per_delivery"] = deliveries == 0 ? 0 : total * 1e9 / deliveries;
}
BENCHMARK(RoomMessageFanout)->Arg(10)->Arg(100)->Arg(1000)->Arg(10000)->UseManualTime();

void PublishFanout(benchmark::State& state) {
  const auto members = static_cast<uint32_t>(state.range(0));
  FilledApp filled(members);
  const std::string text(100, 'x');
  const int batch = members >= 1000 ? 16 : 256;
  double total = 0;
  for (auto _ : state) {
    double start = cpu_seconds();
    for (int i = 0; i < batch; ++i) benchmark::DoNotOptimize(filled.app.publish("big", "server", text));
    double elapsed = cpu_seconds() - start;
    total += elapsed;
    state.SetIterationTime(elapsed);
  }
  const double deliveries = static_cast<double>(filled.transport.frames);
  state.counters["ns_per_delivery"] = deliveries == 0 ? 0 : total * 1e9 / deliveries;
}
BENCHMARK(PublishFanout)->Arg(10)->Arg(1000)->Arg(10000)->UseManualTime();

void RoomFill(benchmark::State& state) {
  const auto members = static_cast<uint32_t>(state.range(0));
  const bool batched = state.range(1) != 0;
  constexpr uint32_t kJoinsPerTick = 100;
  std::vector<std::string> hellos;
  for (uint32_t i = 0; i < members; ++i) hellos.push_back(R"({"type":"hello","name":"user)" + std::to_string(i) + R"("})");
  const std::string join = R"({"type":"join","room":"big"})";
  uint64_t frames = 0;
  double total = 0;
  for (auto _ : state) {
    CountingTransport transport;
    chat::ChatApp app(transport);
    // The loop only times the batches here (never run): flush_presence() stands in for its tick.
    reactor::EventLoop loop;
    if (batched) app.set_loop_clock(&loop);
    std::string scratch;
    auto send = [&](protocol::ConnectionId id, const std::string& text) {
      scratch = text;
      app.on_message(id, protocol::Opcode::kText, {reinterpret_cast<uint8_t*>(scratch.data()), scratch.size()});
    };
    double start = cpu_seconds();
    for (uint32_t i = 0; i < members; ++i) {
      protocol::ConnectionId id = make_id(i + 10);
      app.on_open(id);
      send(id, hellos[i]);
      send(id, join);
      if (batched && i % kJoinsPerTick == kJoinsPerTick - 1) app.flush_presence();
    }
    if (batched) app.flush_presence();
    double elapsed = cpu_seconds() - start;
    total += elapsed;
    state.SetIterationTime(elapsed);
    frames += transport.frames;
    if (app.rooms().room(app.rooms().find("big")).size() != members) state.SkipWithError("not every user joined");
  }
  state.counters["fill_ms"] = total * 1e3 / static_cast<double>(state.iterations());
  state.counters["frames"] = static_cast<double>(frames) / static_cast<double>(state.iterations());
}
BENCHMARK(RoomFill)->Args({1000, 0})->Args({1000, 1})->Args({10000, 0})->Args({10000, 1})->Iterations(1)->UseManualTime();

}  // namespace
