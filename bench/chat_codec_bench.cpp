// Chat codec costs per message: parsing a typical client msg (~100 B) and a rejected one, and
// writing the msg broadcast, the ack, and a text that needs escaping.
#include "chat/chat_codec.h"

#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

namespace {

constexpr size_t kTextLimit = 4096;

// 101 bytes: what a chat client sends for a one-line message.
constexpr std::string_view kTypicalMsg =
    R"({"type":"msg","room":"lobby","text":"hey, is anyone around to look at the deploy?","id":"c1042"})";

void BM_ParseMsg(benchmark::State& state) {
  chat::ChatParser parser;
  chat::ClientMessage message;
  for (auto _ : state) {
    chat::ParseResult result = parser.parse(kTypicalMsg, kTextLimit, message);
    benchmark::DoNotOptimize(result);
    benchmark::DoNotOptimize(message);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kTypicalMsg.size()));
}
BENCHMARK(BM_ParseMsg);

void BM_ParsePing(benchmark::State& state) {
  chat::ChatParser parser;
  chat::ClientMessage message;
  constexpr std::string_view kPing = R"({"type":"ping"})";
  for (auto _ : state) {
    chat::ParseResult result = parser.parse(kPing, kTextLimit, message);
    benchmark::DoNotOptimize(result);
    benchmark::DoNotOptimize(message);
  }
}
BENCHMARK(BM_ParsePing);

// A rejected message costs the same parse plus the check that fails.
void BM_ParseInvalidRoom(benchmark::State& state) {
  chat::ChatParser parser;
  chat::ClientMessage message;
  constexpr std::string_view kBad = R"({"type":"msg","room":"the lobby","text":"hi","id":"c7"})";
  for (auto _ : state) {
    chat::ParseResult result = parser.parse(kBad, kTextLimit, message);
    benchmark::DoNotOptimize(result);
  }
}
BENCHMARK(BM_ParseInvalidRoom);

// Text length in bytes as the argument: the parse is linear in the message.
void BM_ParseMsgLongText(benchmark::State& state) {
  chat::ChatParser parser;
  chat::ClientMessage message;
  std::string json = R"({"type":"msg","room":"lobby","text":")" + std::string(state.range(0), 'x') + R"("})";
  for (auto _ : state) {
    chat::ParseResult result = parser.parse(json, kTextLimit, message);
    benchmark::DoNotOptimize(result);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * json.size()));
}
BENCHMARK(BM_ParseMsgLongText)->Arg(1000)->Arg(4000);

// The broadcast: written once per message, into a buffer reused across messages.
void BM_WriteMsg(benchmark::State& state) {
  std::string out;
  out.reserve(256);
  for (auto _ : state) {
    out.clear();
    chat::write_msg(out, "lobby", "alice", "hey, is anyone around to look at the deploy?", 1732190000000, 1042);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_WriteMsg);

void BM_WriteAck(benchmark::State& state) {
  std::string out;
  out.reserve(128);
  for (auto _ : state) {
    out.clear();
    chat::write_ack(out, "c1042", 1042, 1732190000000);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_WriteAck);

// append_json_string over N bytes of plain text (the word-at-a-time path) and of text where
// every 8th byte needs escaping.
void BM_AppendJsonStringPlain(benchmark::State& state) {
  std::string text(state.range(0), 'x');
  std::string out;
  out.reserve(text.size() * 2 + 2);
  for (auto _ : state) {
    out.clear();
    chat::append_json_string(out, text);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_AppendJsonStringPlain)->Arg(64)->Arg(4000);

void BM_AppendJsonStringEscapes(benchmark::State& state) {
  std::string text;
  while (text.size() < static_cast<size_t>(state.range(0))) text += "line ok\n";
  std::string out;
  out.reserve(text.size() * 2 + 2);
  for (auto _ : state) {
    out.clear();
    chat::append_json_string(out, text);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_AppendJsonStringEscapes)->Arg(4000);

}  // namespace
