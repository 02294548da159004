// Issue 4: parleyd's memory stays bounded with 10,000 connections that never read. A real parleyd
// (drop policy, small --max-buffered) fans messages out to 10,000 chat subscribers that joined
// and then stopped reading; its RSS is sampled after each of several publishing phases and must
// stop growing once every write queue has reached the cap.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/parleyd_process.h"
#include "tests/support/process_memory.h"
#include "tests/support/ws_test_client.h"

namespace {

using namespace std::chrono_literals;
using parley_test::ParleydProcess;
using parley_test::kAddressSanitizer;
using parley_test::rss_kib;
using parley_test::Received;
using parley_test::WsTestClient;

constexpr int kRooms = 100;
constexpr int kSubscribersPerRoom = 100;  // 10,000 silent connections in all
constexpr size_t kMaxBuffered = 16 * 1024;
constexpr size_t kTextSize = 4000;        // one published frame is ~4 KiB
constexpr int kRoundsPerPhase = 30;       // a phase sends ~120 KiB to each subscriber: more than
                                          // its socket buffers and its queue's cap hold together
constexpr int kPhases = 4;

std::string room_name(int room) { return "r" + std::to_string(room); }

// Reads `publisher`'s messages until `acks` acks have arrived (presence events are skipped).
::testing::AssertionResult await_acks(WsTestClient& publisher, int acks) {
  int seen = 0;
  while (seen < acks) {
    Received r = publisher.recv_message(10s);
    if (!r.ok()) return ::testing::AssertionFailure() << "after " << seen << " acks: " << r.error;
    if (r.payload.find(R"("type":"ack")") != std::string::npos) ++seen;
    if (r.payload.find(R"("type":"error")") != std::string::npos) {
      return ::testing::AssertionFailure() << "publish refused: " << r.payload;
    }
  }
  return ::testing::AssertionSuccess();
}

// One message of kTextSize bytes to every room, then their acks.
::testing::AssertionResult publish_rounds(WsTestClient& publisher, int rounds) {
  const std::string text(kTextSize, 'x');
  for (int round = 0; round < rounds; ++round) {
    for (int room = 0; room < kRooms; ++room) {
      std::string msg = R"({"type":"msg","room":")" + room_name(room) + R"(","text":")" + text + R"("})";
      if (!publisher.send_frame(parley_test::kOpText, msg)) {
        return ::testing::AssertionFailure() << "send: " << publisher.error();
      }
    }
    ::testing::AssertionResult acked = await_acks(publisher, kRooms);
    if (!acked) return acked;
  }
  return ::testing::AssertionSuccess();
}

TEST(SlowConsumerMemory, RssPlateausWithTenThousandConnectionsThatNeverRead) {
  // Under ASan (make asan, where parleyd is the ASan build too), freed blocks sit in a
  // quarantine of up to 256 MiB before reuse, so RSS would track allocation churn rather than
  // live memory. The child inherits this environment: no quarantine, same checks.
  parley_test::asan_children_without_quarantine();
  ParleydProcess server({"--max-buffered", std::to_string(kMaxBuffered), "--slow-consumer", "drop",
                         "--rate-limit", "0", "--history", "0", "--ping-interval", "0",
                         "--max-rooms-per-connection", std::to_string(kRooms),
                         // 10,000 connections from 127.0.0.1: over the default per-address cap.
                         "--max-connections-per-ip", "0"});
  ASSERT_TRUE(server.ok()) << server.error();
  const long rss_start = rss_kib(server.pid());
  ASSERT_GT(rss_start, 0);

  // Subscribers: hello, join, then never read again. A small receive buffer keeps the kernel
  // from absorbing what the server's write queue should be holding.
  std::vector<std::unique_ptr<WsTestClient>> subscribers;
  subscribers.reserve(kRooms * kSubscribersPerRoom);
  for (int room = 0; room < kRooms; ++room) {
    for (int i = 0; i < kSubscribersPerRoom; ++i) {
      auto client = std::make_unique<WsTestClient>();
      ASSERT_TRUE(client->connect("127.0.0.1", server.port(), "/chat")) << client->error();
      int small = 16 * 1024;
      ASSERT_EQ(setsockopt(client->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
      std::string name = "s" + std::to_string(room) + "_" + std::to_string(i);
      ASSERT_TRUE(client->send_frame(parley_test::kOpText, R"({"type":"hello","name":")" + name + R"("})"));
      ASSERT_TRUE(client->send_frame(parley_test::kOpText, R"({"type":"join","room":")" + room_name(room) + R"("})"));
      subscribers.push_back(std::move(client));
    }
  }

  WsTestClient publisher;
  ASSERT_TRUE(publisher.connect("127.0.0.1", server.port(), "/chat")) << publisher.error();
  ASSERT_TRUE(publisher.send_frame(parley_test::kOpText, R"({"type":"hello","name":"publisher"})"));
  for (int room = 0; room < kRooms; ++room) {
    ASSERT_TRUE(publisher.send_frame(parley_test::kOpText, R"({"type":"join","room":")" + room_name(room) + R"("})"));
  }
  // Every subscriber's join was processed before the publisher's (one reactor, in order), so
  // `who` on the last room lists all of its subscribers.
  ASSERT_TRUE(publisher.send_frame(parley_test::kOpText, R"({"type":"who","room":")" + room_name(kRooms - 1) + R"("})"));
  for (;;) {
    Received r = publisher.recv_message(10s);
    ASSERT_TRUE(r.ok()) << r.error;
    if (r.payload.find(R"("type":"who")") == std::string::npos) continue;
    EXPECT_NE(r.payload.find("s" + std::to_string(kRooms - 1) + "_" + std::to_string(kSubscribersPerRoom - 1)),
              std::string::npos)
        << r.payload;
    break;
  }

  // Phases 1 and 2 fill the sockets and the queues; phases 3 and 4 publish as much again.
  long rss[kPhases + 1] = {rss_start};
  for (int phase = 1; phase <= kPhases; ++phase) {
    ASSERT_TRUE(publish_rounds(publisher, kRoundsPerPhase)) << "phase " << phase;
    rss[phase] = rss_kib(server.pid());
  }

  // The caps were reached: messages were dropped for the silent subscribers, none was closed.
  const long dropped = parley_test::parleyd_metric(server.port(), "parley_messages_dropped_total");
  EXPECT_GT(dropped, 0);
  EXPECT_EQ(parley_test::parleyd_metric(server.port(), "parley_slow_consumers_closed_total"), 0);
  EXPECT_GE(parley_test::parleyd_metric(server.port(), "parley_connections"), kRooms * kSubscribersPerRoom + 1);

  // Bounded: the growth is at most one full queue per subscriber (in fact far less, since a
  // queue holds references to frames shared by the room), and it stops: the last two phases
  // add next to nothing.
  const long growth = rss[2] - rss_start;
  const long bound_kib = static_cast<long>(kRooms * kSubscribersPerRoom * (kMaxBuffered + 2 * kTextSize) / 1024);
  std::string trace = std::to_string(rss[0]);
  for (int phase = 1; phase <= kPhases; ++phase) trace += " -> " + std::to_string(rss[phase]);
  trace += " KiB, " + std::to_string(dropped) + " messages dropped";
  EXPECT_LT(rss[kPhases] - rss_start, bound_kib) << trace;
  EXPECT_LT(rss[kPhases] - rss[2], 2048 + growth / 10) << "RSS kept growing: " << trace;
  std::printf("[ info     ] parleyd RSS %s\n", trace.c_str());

  // Still members: the drop policy kept every silent subscriber in its room. (Catching up once
  // a subscriber reads again is tested in ws_server_limits_test.)
  ASSERT_TRUE(publisher.send_frame(parley_test::kOpText, R"({"type":"who","room":")" + room_name(0) + R"("})"));
  for (;;) {
    Received r = publisher.recv_message(10s);
    ASSERT_TRUE(r.ok()) << r.error;
    if (r.payload.find(R"("type":"who")") == std::string::npos) continue;
    for (int i = 0; i < kSubscribersPerRoom; ++i) {
      EXPECT_NE(r.payload.find("\"s0_" + std::to_string(i) + "\""), std::string::npos) << i << ": " << r.payload;
    }
    break;
  }
}

}  // namespace
