#pragma once
// Support shared by the Redis cluster tests (issue 15): a chat client that can wait for a message
// of one type while keeping the others for later, and a wait on Redis's PUBSUB NUMSUB. Test
// support only (header-only: it is small and used by two test files).
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/chat_test_support.h"

namespace parley_test {

inline constexpr milliseconds kClusterTimeout{10000};

// A chat client on any address.
class Member {
 public:
  // Opens a WebSocket to `path` (e.g. "/chat?token=...").
  bool connect(const std::string& host, uint16_t port, const std::string& path = "/chat") {
    return ws_.connect(host, port, path);
  }
  bool send(const std::string& json) { return ws_.send_frame(kOpText, json); }
  // The oldest unread message of type `type` (others stay unread for their own next()), or ""
  // when none came in time.
  std::string next(const std::string& type, milliseconds timeout = kClusterTimeout) {
    return next_any({type}, timeout);
  }
  // The oldest unread message whose type is one of `types`, or "" when none came in time.
  std::string next_any(const std::vector<std::string>& types, milliseconds timeout = kClusterTimeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (size_t i = 0;; ++i) {
      if (i < inbox_.size()) {
        std::string type = Json(inbox_[i]).type();
        if (std::find(types.begin(), types.end(), type) == types.end()) continue;
        std::string found = std::move(inbox_[i]);
        inbox_.erase(inbox_.begin() + static_cast<long>(i));
        return found;
      }
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return "";
      Received message = ws_.recv_message(std::chrono::duration_cast<milliseconds>(deadline - now));
      if (!message.ok()) return "";
      inbox_.push_back(std::move(message.payload));
      i = inbox_.size() - 2;  // look at the new one next
    }
  }
  // Says hello as `name` and returns the answer: the welcome or the error.
  std::string try_hello(const std::string& name) {
    if (!send(R"({"type":"hello","name":")" + name + R"("})")) return "";
    return next_any({"welcome", "error"});
  }
  // Says hello as `name` until it is welcomed or `timeout` passes, pausing `pause` after each
  // refusal, and returns the last answer. For a name another node is releasing: its release and
  // this node's claim race in Redis, and a client told name_taken says hello again.
  std::string hello_until_welcomed(const std::string& name, milliseconds timeout,
                                   milliseconds pause = milliseconds(100)) {
    std::string answer;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
      answer = try_hello(name);
      if (Json(answer).type() == "welcome") break;
      std::this_thread::sleep_for(pause);
    } while (std::chrono::steady_clock::now() < deadline);
    return answer;
  }
  // Closes the TCP connection without a close frame (the server sees 1006).
  void drop() { ws_.disconnect(); }
  void hello(const std::string& name) {
    ASSERT_TRUE(send(R"({"type":"hello","name":")" + name + R"("})"));
    ASSERT_FALSE(next("welcome").empty());
  }
  // Joins `room` and returns the history reply.
  std::string join(const std::string& room, const std::string& extra = "") {
    EXPECT_TRUE(send(R"({"type":"join","room":")" + room + "\"" + extra + "}"));
    return next("history");
  }
  // Nothing of type `type` for `quiet`.
  void expect_no(const std::string& type, milliseconds quiet = milliseconds(500)) {
    std::string got = next(type, quiet);
    EXPECT_TRUE(got.empty()) << "unexpected: " << got;
  }

 private:
  WsTestClient ws_;
  std::vector<std::string> inbox_;
};

// Subscribers of `channel` on the Redis at `port` (PUBSUB NUMSUB), -1 on error.
inline long long subscribers(uint16_t port, const std::string& channel) {
  redisContext* context = redisConnect("127.0.0.1", port);
  if (context == nullptr || context->err != 0) {
    if (context != nullptr) redisFree(context);
    return -1;
  }
  auto* reply = static_cast<redisReply*>(redisCommand(context, "PUBSUB NUMSUB %s", channel.c_str()));
  long long count = -1;
  if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) count = reply->element[1]->integer;
  if (reply != nullptr) freeReplyObject(reply);
  redisFree(context);
  return count;
}

// Polls subscribers() until it equals `want` or 10 s pass; returns the last value.
inline long long await_subscribers(uint16_t port, const std::string& channel, long long want) {
  long long count = -1;
  for (int i = 0; i < 200 && (count = subscribers(port, channel)) != want; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  return count;
}

}  // namespace parley_test
