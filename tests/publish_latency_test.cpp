// parley_publish_to_delivery_seconds (issue 16): one observation per room message or DM a client
// sent that was stored and fanned out (refused ones are not counted), in a Prometheus histogram
// whose buckets are cumulative; with the SQLite store the commit wait is inside it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/chat_test_support.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/ws_test_client.h"

namespace {

using parley_test::ChatClient;
using parley_test::Json;
using parley_test::ParleydProcess;

constexpr const char* kName = "parley_publish_to_delivery_seconds";

struct Scraped {
  std::vector<std::pair<std::string, double>> buckets;  // le, cumulative count, in order
  double count = -1;
  double sum = -1;
  bool typed = false;  // "# TYPE ... histogram" present
};

Scraped scrape(uint16_t port) {
  const std::string body =
      parley_test::http_request("127.0.0.1", port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").body;
  Scraped out;
  const std::string name = kName;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (line == "# TYPE " + name + " histogram") out.typed = true;
    if (line.rfind(name + "_bucket{le=\"", 0) == 0) {
      const size_t le_end = line.find('"', name.size() + 12);
      out.buckets.emplace_back(line.substr(name.size() + 12, le_end - name.size() - 12),
                               std::stod(line.substr(line.find("} ") + 2)));
    } else if (line.rfind(name + "_count ", 0) == 0) {
      out.count = std::stod(line.substr(name.size() + 7));
    } else if (line.rfind(name + "_sum ", 0) == 0) {
      out.sum = std::stod(line.substr(name.size() + 5));
    }
  }
  return out;
}

// Three users in one room; alice sends `messages` room messages and `dms` DMs to bob (each with
// an id, so each gets an ack), and one message to a room she is not in (refused, not counted).
// Returns when alice has every ack and bob and carol every message.
void send_known_load(uint16_t port, int messages, int dms) {
  std::vector<std::unique_ptr<ChatClient>> users;
  for (const char* name : {"alice", "bob", "carol"}) {
    users.push_back(std::make_unique<ChatClient>());
    ASSERT_TRUE(users.back()->connect(port));
    users.back()->hello(name);
    users.back()->join("room");
  }
  ASSERT_TRUE(users[0]->send(R"({"type":"msg","room":"elsewhere","text":"refused","id":"x"})"));
  for (int i = 0; i < messages; ++i) {
    ASSERT_TRUE(users[0]->send(R"({"type":"msg","room":"room","text":"m","id":"m)" + std::to_string(i) + R"("})"));
  }
  for (int i = 0; i < dms; ++i) {
    ASSERT_TRUE(users[0]->send(R"({"type":"dm","to":"bob","text":"d","id":"d)" + std::to_string(i) + R"("})"));
  }
  int acks = 0;
  int errors = 0;
  while (acks < messages + dms) {
    const Json reply(users[0]->recv());
    ASSERT_TRUE(reply.ok) << reply.raw;
    if (reply.type() == "ack") ++acks;
    if (reply.type() == "error") ++errors;
  }
  EXPECT_EQ(errors, 1);  // the message to "elsewhere"
  for (size_t u = 1; u < users.size(); ++u) {
    int seen = 0;
    const int expected = messages + (u == 1 ? dms : 0);
    while (seen < expected) {
      const Json message(users[u]->recv());
      ASSERT_TRUE(message.ok) << message.raw;
      if (message.type() == "msg" || message.type() == "dm") ++seen;
    }
  }
}

void expect_histogram_counts(const Scraped& histogram, double expected) {
  ASSERT_TRUE(histogram.typed) << kName << " is missing or not typed histogram";
  ASSERT_GE(histogram.buckets.size(), 2u);
  EXPECT_EQ(histogram.buckets.front().first, "0.001");  // the loop clock's resolution
  EXPECT_EQ(histogram.buckets.back().first, "+Inf");
  for (size_t i = 1; i < histogram.buckets.size(); ++i) {
    EXPECT_GE(histogram.buckets[i].second, histogram.buckets[i - 1].second)
        << "bucket le=" << histogram.buckets[i].first << " is below le=" << histogram.buckets[i - 1].first;
  }
  EXPECT_EQ(histogram.buckets.back().second, expected);
  EXPECT_EQ(histogram.count, expected);
  EXPECT_GE(histogram.sum, 0.0);
  // Generous: on a loaded machine a commit may take long, but not 10 s per message on average.
  EXPECT_LE(histogram.sum, expected * 10.0);
}

TEST(PublishToDelivery, CountsEveryStoredMessageOnceWithTheSqliteCommitInside) {
  const std::filesystem::path db =
      std::filesystem::temp_directory_path() / ("parley_p2d_" + std::to_string(::getpid()) + ".db");
  {
    ParleydProcess server({"--store", db.string(), "--rate-limit", "0"});
    ASSERT_TRUE(server.ok()) << server.error();
    const Scraped before = scrape(server.port());
    expect_histogram_counts(before, 0);
    constexpr int kMessages = 40;
    constexpr int kDms = 5;
    send_known_load(server.port(), kMessages, kDms);
    expect_histogram_counts(scrape(server.port()), kMessages + kDms);
  }
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db.string() + suffix, ec);
}

TEST(PublishToDelivery, CountsEveryMessageOnceWithTheMemoryLog) {
  ParleydProcess server({"--store", "none", "--rate-limit", "0"});
  ASSERT_TRUE(server.ok()) << server.error();
  constexpr int kMessages = 30;
  constexpr int kDms = 3;
  send_known_load(server.port(), kMessages, kDms);
  const Scraped histogram = scrape(server.port());
  expect_histogram_counts(histogram, kMessages + kDms);
  // Stored and delivered in the iteration they arrived in: 0 ms on the loop clock, all in the first bucket.
  EXPECT_EQ(histogram.buckets.front().second, kMessages + kDms);
}

}  // namespace
