// Session resume and retention by age against a real parleyd (issue 14): a dropped client's
// session is held (others see away), a hello with its token within --resume-window gets it back
// with the missed messages; after the window the worker's expiry timer sends `left` and the
// token fails; --history-max-age deletes old stored messages (applied at start).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/chat_test_support.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/room_log_test_support.h"

namespace parley_test {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<ChatClient> connect_client(const ParleydProcess& server) {
  auto c = std::make_unique<ChatClient>();
  EXPECT_TRUE(c->connect(server.port())) << c->ws().error();
  return c;
}

// Says hello as `name` (with `resume` when not empty) and returns the welcome.
std::string hello(ChatClient& client, std::string_view name, std::string_view resume = {}) {
  std::string json = R"({"type":"hello","name":")" + std::string(name) + '"';
  if (!resume.empty()) json += R"(,"resume":")" + std::string(resume) + '"';
  EXPECT_TRUE(client.send(json + "}"));
  return client.recv();
}

TEST(SessionResumeIntegration, ADroppedClientResumesWithItsRoomsAndMissedMessages) {
  room_log_test::TempDir dir;
  ParleydProcess server({"--store", dir.file("parley.db"), "--resume-window", "60", "--rate-limit", "0"});
  ASSERT_TRUE(server.ok()) << server.error();
  auto alice = connect_client(server);
  Json welcome(hello(*alice, "alice"));
  std::string token = welcome.str("resume");
  ASSERT_EQ(token.size(), 32u) << welcome.type();
  auto bob = connect_client(server);
  bob->hello("bob");
  alice->join("lobby");
  bob->join("lobby");
  EXPECT_EQ(Json(alice->recv()).type(), "joined");
  ASSERT_TRUE(bob->send(R"({"type":"msg","room":"lobby","text":"one","id":"b1"})"));
  EXPECT_EQ(Json(alice->recv()).num("seq"), 1u);
  EXPECT_EQ(Json(bob->recv()).type(), "ack");

  alice->ws().disconnect();  // TCP gone without a close frame: held, not left
  Json away(bob->recv());
  EXPECT_EQ(away.type(), "presence");
  EXPECT_EQ(away.str("status"), "away");
  ASSERT_TRUE(bob->send(R"({"type":"msg","room":"lobby","text":"two","id":"b2"})"));
  EXPECT_EQ(Json(bob->recv()).type(), "ack");
  auto stranger = connect_client(server);
  EXPECT_EQ(Json(hello(*stranger, "ALICE")).str("code"), "name_taken");

  auto alice2 = connect_client(server);
  Json resumed(hello(*alice2, "alice", token));
  ASSERT_EQ(resumed.type(), "welcome");
  EXPECT_TRUE(resumed.boolean("resumed"));
  EXPECT_EQ(Json(bob->recv()).str("status"), "back");
  ASSERT_TRUE(alice2->send(R"({"type":"join","room":"lobby","since_seq":1})"));
  Json recovery(alice2->recv());
  EXPECT_EQ(seqs_of(recovery.messages()), std::vector<uint64_t>{2});
  EXPECT_TRUE(recovery.boolean("recovered"));
  ASSERT_TRUE(bob->send(R"({"type":"msg","room":"lobby","text":"three","id":"b3"})"));
  EXPECT_EQ(Json(alice2->recv()).num("seq"), 3u);
  alice2->expect_quiet();
  bob->recv();  // ack
  bob->expect_quiet();  // no left, no joined
}

TEST(SessionResumeIntegration, AfterTheWindowTheTimerSendsLeftAndTheTokenFails) {
  ParleydProcess server({"--resume-window", "1"});
  ASSERT_TRUE(server.ok()) << server.error();
  auto alice = connect_client(server);
  std::string token = Json(hello(*alice, "alice")).str("resume");
  auto bob = connect_client(server);
  bob->hello("bob");
  alice->join("lobby");
  bob->join("lobby");
  alice->recv();
  alice->ws().disconnect();
  EXPECT_EQ(Json(bob->recv()).str("status"), "away");
  // The window is 1 s and the expiry check runs every second: `left` within ~2 s (10 s allowed).
  Json left(bob->recv(10000ms));
  EXPECT_EQ(left.type(), "left");
  EXPECT_EQ(left.str("user"), "alice");
  auto alice2 = connect_client(server);
  Json failed(hello(*alice2, "alice", token));
  EXPECT_EQ(failed.str("code"), "resume_failed");
  EXPECT_EQ(Json(hello(*alice2, "alice")).type(), "welcome");
}

TEST(SessionResumeIntegration, HistoryMaxAgeDeletesOldStoredMessages) {
  room_log_test::TempDir dir;
  const std::string store = dir.file("parley.db");
  {
    ParleydProcess server({"--store", store});
    ASSERT_TRUE(server.ok()) << server.error();
    auto alice = connect_client(server);
    alice->hello("alice");
    alice->join("lobby");
    ASSERT_TRUE(alice->send(R"({"type":"msg","room":"lobby","text":"old","id":"m1"})"));
    EXPECT_EQ(Json(alice->recv()).type(), "ack");
  }
  {
    // Without an age limit the message is still there after a restart.
    ParleydProcess server({"--store", store});
    ASSERT_TRUE(server.ok()) << server.error();
    auto alice = connect_client(server);
    alice->hello("alice");
    EXPECT_EQ(Json(alice->join("lobby")).messages().size(), 1u);
  }
  std::this_thread::sleep_for(2100ms);  // older than 2 s now (the store keeps ms timestamps)
  ParleydProcess server({"--store", store, "--history-max-age", "2s"});
  ASSERT_TRUE(server.ok()) << server.error();
  auto alice = connect_client(server);
  alice->hello("alice");
  // The sweep runs when the writer starts, before any request: the old message is gone.
  EXPECT_TRUE(Json(alice->join("lobby")).messages().empty());
  ASSERT_TRUE(alice->send(R"({"type":"msg","room":"lobby","text":"new","id":"m2"})"));
  EXPECT_EQ(Json(alice->recv()).num("seq"), 2u);  // seqs go on
}

}  // namespace
}  // namespace parley_test
