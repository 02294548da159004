// Signing in from parleyd's page with --auth-secret (issue 17), in a real browser: runs
// tests/browser/auth_e2e.mjs (playwright-core driving Debian's Chromium) against a parleyd with a
// token secret, with tokens minted here: valid (alice, bob), expired, and signed with another
// secret. The script checks what the page says for no token, an expired and a forged one, that it
// stops retrying, and that valid tokens (fragment and paste field) sign in as their subject.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <time.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "chat/auth_token.h"
#include "tests/browser_support.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/shell_command.h"

namespace {

namespace fs = std::filesystem;
using parley_test::ParleydProcess;

constexpr const char* kScript = "tests/browser/auth_e2e.mjs";
constexpr char kSecret[] = "0123456789abcdef0123456789abcdef-issue17";
constexpr char kOtherSecret[] = "fedcba9876543210fedcba9876543210-other17";

std::string mint(const char* user, int64_t ttl_s, const char* secret = kSecret) {
  return chat::mint_token(user, {}, static_cast<uint64_t>(static_cast<int64_t>(::time(nullptr)) + ttl_s), secret);
}

TEST(BrowserAuthE2eTest, PageSignsInWithTokenAndExplainsMissingExpiredAndInvalidOnes) {
  fs::path root;
  const std::string problem = parley_test::prepare_browser_test(kScript, root);
  ASSERT_TRUE(problem.empty()) << problem;

  char pattern[] = "/tmp/parley-browser-auth-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const fs::path dir = pattern;
  std::ofstream(dir / "secret") << kSecret << "\n";
  auto server = std::make_unique<ParleydProcess>(std::vector<std::string>{"--auth-secret", (dir / "secret").string()});
  ASSERT_TRUE(server->ok()) << server->error();

  const std::string valid = mint("alice", 3600);
  const std::string valid2 = mint("bob", 3600);
  const std::string expired = mint("carol", -60);
  const std::string forged = mint("mallory", 3600, kOtherSecret);
  ASSERT_FALSE(valid.empty() || valid2.empty() || expired.empty() || forged.empty());
  fs::path shots = fs::path(parley_test::build_dir()) / "screenshots";
  if (shots.is_relative()) shots = fs::current_path() / shots;

  const std::string command = "cd '" + root.string() + "' && PARLEY_TOKEN_VALID=" + valid +
                              " PARLEY_TOKEN_VALID2=" + valid2 + " PARLEY_TOKEN_EXPIRED=" + expired +
                              " PARLEY_TOKEN_FORGED=" + forged + " timeout -k 5 180 node " + kScript +
                              " --url http://127.0.0.1:" + std::to_string(server->port()) + " --chromium " +
                              parley_test::kChromium + " --screenshots '" + shots.string() + "'";
  std::string output;
  const int rc = parley_test::run_shell(command, output);
  std::error_code ignored;
  fs::remove_all(dir, ignored);
  ASSERT_EQ(rc, 0) << "the browser auth test failed; its output:\n"
                   << output << "\nparleyd stderr:\n" << server->stderr_text();
  EXPECT_NE(output.find("browser auth e2e: all 7 checks passed"), std::string::npos) << output;
  EXPECT_EQ(output.find("not ok"), std::string::npos) << output;
  for (const char* file : {"auth-no-token.png", "auth-expired.png", "auth-signed-in.png"}) {
    EXPECT_TRUE(fs::exists(shots / file)) << "missing screenshot " << (shots / file);
  }
  std::printf("%s", output.c_str());
}

}  // namespace
