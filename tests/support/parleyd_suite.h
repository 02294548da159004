#pragma once
// A GoogleTest fixture base that shares one parleyd among the tests of a suite: started in
// SetUpTestSuite, restarted if an earlier test crashed it (that test is reported as failed), and
// stopped at the end. `Suite` is the derived fixture, so every suite gets its own server; it may
// hide server_args() to start parleyd with arguments.
// Test support only.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/parleyd_process.h"

namespace parley_test {

template <typename Suite>
class ParleydSuite : public ::testing::Test {
 public:
  static void SetUpTestSuite() { server_ = std::make_unique<ParleydProcess>(Suite::server_args()); }
  // parleyd's extra arguments (see ParleydProcess); none by default.
  static std::vector<std::string> server_args() { return {}; }
  static void TearDownTestSuite() { server_.reset(); }

 protected:
  void SetUp() override {
    // A server that crashed in an earlier case is restarted so that only that case fails
    // (TearDown reported it); one that never started is not retried.
    if (server_ == nullptr || (server_->ok() && !server_->running())) SetUpTestSuite();
    ASSERT_TRUE(server_->ok()) << server_->error();
  }

  void TearDown() override {
    if (server_ && server_->ok() && !server_->running()) {
      std::string err = server_->stderr_text();
      if (err.size() > 2000) err = "..." + err.substr(err.size() - 2000);
      ADD_FAILURE() << "parleyd " << server_->status_text() << " during this test; stderr: " << err;
    }
  }

  static uint16_t port() { return server_->port(); }

  static inline std::unique_ptr<ParleydProcess> server_;
};

}  // namespace parley_test
