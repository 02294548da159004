#include "tools/token_tool.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "chat/auth_token.h"

namespace tools {
namespace {

constexpr uint64_t kNow = 1'700'000'000;
constexpr std::string_view kSecret = "0123456789abcdef0123456789abcdef";

// Runs the tool in-process and captures its output streams.
class TokenTool : public ::testing::Test {
 protected:
  void SetUp() override {
    char name[] = "/tmp/parley_token_secret_XXXXXX";
    const int fd = mkstemp(name);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, kSecret.data(), kSecret.size()), static_cast<ssize_t>(kSecret.size()));
    ASSERT_EQ(write(fd, "\n", 1), 1);
    close(fd);
    chmod(name, 0600);
    secret_path_ = name;
  }
  void TearDown() override { std::remove(secret_path_.c_str()); }

  int run(std::vector<std::string> args, std::string_view stdin_text = {}) {
    std::FILE* in = std::tmpfile();
    std::FILE* out = std::tmpfile();
    std::FILE* err = std::tmpfile();
    if (!stdin_text.empty()) std::fwrite(stdin_text.data(), 1, stdin_text.size(), in);
    std::rewind(in);
    const int code = run_token_tool(args, in, out, err, kNow);
    out_ = slurp(out);
    err_ = slurp(err);
    std::fclose(in);
    std::fclose(out);
    std::fclose(err);
    return code;
  }

  static std::string slurp(std::FILE* f) {
    std::rewind(f);
    std::string s;
    char buf[512];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
    return s;
  }

  std::string mint(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--secret-file", secret_path_, "--sub", "alice"};
    args.insert(args.end(), extra.begin(), extra.end());
    EXPECT_EQ(run(args), kTokenExitOk) << err_;
    EXPECT_FALSE(out_.empty());
    EXPECT_EQ(out_.back(), '\n');
    return out_.substr(0, out_.size() - 1);
  }

  std::string secret_path_;
  std::string out_, err_;
};

TEST_F(TokenTool, MintsAVerifiableToken) {
  const std::string token = mint({"--rooms", "general,#dev", "--ttl", "60"});
  EXPECT_TRUE(err_.empty()) << err_;
  const chat::TokenResult r = chat::verify_token(token, kSecret, kNow);
  ASSERT_EQ(r.status, chat::TokenStatus::kOk);
  EXPECT_EQ(r.subject, "alice");
  EXPECT_EQ(r.rooms, (std::vector<std::string>{"general", "dev"}));
  EXPECT_EQ(r.expires_at, kNow + 60);
}

TEST_F(TokenTool, DefaultTtlIsAnHourAndRoomsAreUnrestricted) {
  const chat::TokenResult r = chat::verify_token(mint(), kSecret, kNow);
  EXPECT_EQ(r.expires_at, kNow + 3600);
  EXPECT_FALSE(r.has_rooms);
}

TEST_F(TokenTool, EmptyRoomsListAllowsNoRoom) {
  const chat::TokenResult r = chat::verify_token(mint({"--rooms", ""}), kSecret, kNow);
  EXPECT_TRUE(r.has_rooms);
  EXPECT_TRUE(r.rooms.empty());
}

TEST_F(TokenTool, NotBeforeDelaysTheToken) {
  const std::string token = mint({"--not-before", "30", "--ttl", "60"});
  EXPECT_EQ(chat::verify_token(token, kSecret, kNow).status, chat::TokenStatus::kNotYetValid);
  const chat::TokenResult r = chat::verify_token(token, kSecret, kNow + 30);
  EXPECT_EQ(r.status, chat::TokenStatus::kOk);
  EXPECT_EQ(r.expires_at, kNow + 90);
}

TEST_F(TokenTool, VerifyPrintsClaims) {
  const std::string token = mint({"--rooms", "a,b"});
  EXPECT_EQ(run({"--verify", token, "--secret-file", secret_path_}), kTokenExitOk);
  EXPECT_EQ(out_, "status: ok\nsub: alice\nrooms: a,b\nexp: 1700003600 (in 3600 s)\n");
  EXPECT_TRUE(err_.empty()) << err_;
}

TEST_F(TokenTool, VerifyReadsStdin) {
  const std::string token = mint();
  EXPECT_EQ(run({"--verify", "-", "--secret-file", secret_path_}, token + "\n"), kTokenExitOk);
  EXPECT_NE(out_.find("rooms: (any)"), std::string::npos) << out_;
}

TEST_F(TokenTool, VerifyRejectsWithExitOne) {
  const std::string token = mint({"--ttl", "10"});
  EXPECT_EQ(run({"--verify", token, "--secret-file", secret_path_, "--now", "1700000010"}),
            kTokenExitRejected);
  EXPECT_NE(out_.find("status: expired"), std::string::npos) << out_;
  EXPECT_NE(out_.find("sub: alice"), std::string::npos) << out_;
  EXPECT_NE(err_.find("token rejected: expired"), std::string::npos) << err_;

  std::string forged = token;
  forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(run({"--verify", forged, "--secret-file", secret_path_}), kTokenExitRejected);
  EXPECT_EQ(out_, "status: bad_signature\n");
  EXPECT_NE(err_.find("signature mismatch"), std::string::npos) << err_;

  EXPECT_EQ(run({"--verify", "garbage", "--secret-file", secret_path_}), kTokenExitRejected);
  EXPECT_EQ(out_, "status: malformed\n");
}

TEST_F(TokenTool, Help) {
  EXPECT_EQ(run({"--help"}), kTokenExitOk);
  EXPECT_NE(out_.find("usage: parley-token"), std::string::npos);
  EXPECT_EQ(run({"-h"}), kTokenExitOk);
}

TEST_F(TokenTool, UsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"--sub", "alice"},                                       // no secret file
      {"--secret-file", secret_path_},                          // nothing to do
      {"--secret-file", secret_path_, "--sub", "bad name"},
      {"--secret-file", secret_path_, "--sub", "alice", "--rooms", "a,,b"},
      {"--secret-file", secret_path_, "--sub", "alice", "--rooms", "a,"},
      {"--secret-file", secret_path_, "--sub", "alice", "--rooms", "bad room"},
      {"--secret-file", secret_path_, "--sub", "alice", "--ttl", "0"},
      {"--secret-file", secret_path_, "--sub", "alice", "--ttl", "-5"},
      {"--secret-file", secret_path_, "--sub", "alice", "--ttl", "1h"},
      {"--secret-file", secret_path_, "--sub", "alice", "--ttl", "999999999999"},
      {"--secret-file", secret_path_, "--sub", "alice", "--bogus", "x"},
      {"--secret-file", secret_path_, "--sub"},
      {"--secret-file", secret_path_, "--verify", "x", "--sub", "alice"},
      {"--secret-file", "/nonexistent/secret", "--sub", "alice"},
  };
  for (const auto& args : cases) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(run(args), kTokenExitUsage) << joined;
    EXPECT_TRUE(out_.empty()) << joined << out_;
    EXPECT_FALSE(err_.empty()) << joined;
    EXPECT_EQ(err_.find('\n'), err_.size() - 1) << joined << err_;  // one line
  }
}

TEST_F(TokenTool, ShortSecretIsRefused) {
  std::FILE* f = std::fopen(secret_path_.c_str(), "w");
  std::fputs("too short\n", f);
  std::fclose(f);
  EXPECT_EQ(run({"--secret-file", secret_path_, "--sub", "alice"}), kTokenExitUsage);
  EXPECT_NE(err_.find("at least 32"), std::string::npos) << err_;
}

TEST_F(TokenTool, WarnsAboutAReadableSecret) {
  chmod(secret_path_.c_str(), 0644);
  mint();
  EXPECT_NE(err_.find("warning"), std::string::npos) << err_;
}

}  // namespace
}  // namespace tools
