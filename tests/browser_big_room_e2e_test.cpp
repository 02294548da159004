// The browser page in a big room (issue 18): runs tests/browser/big_room_e2e.mjs (playwright-core
// driving Debian's Chromium) against a parleyd. The script fills a room past 100 members (so its
// presence comes as batched `members` events) and checks the page's people list and header.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/browser_support.h"
#include "tests/support/parleyd_process.h"
#include "tests/support/shell_command.h"

namespace {

namespace fs = std::filesystem;
using parley_test::ParleydProcess;

constexpr const char* kScript = "tests/browser/big_room_e2e.mjs";

TEST(BrowserBigRoomE2eTest, PageKeepsTheMemberListOfARoomOver100Members) {
  fs::path root;
  const std::string problem = parley_test::prepare_browser_test(kScript, root);
  ASSERT_TRUE(problem.empty()) << problem;
  // The crowd comes from one address, faster than the default message rate allows a browser.
  auto server = std::make_unique<ParleydProcess>(std::vector<std::string>{"--rate-limit", "0"});
  ASSERT_TRUE(server->ok()) << server->error();
  fs::path shots = fs::path(parley_test::build_dir()) / "screenshots";
  if (shots.is_relative()) shots = fs::current_path() / shots;
  const std::string command = "cd '" + root.string() + "' && timeout -k 5 180 node " + kScript +
                              " --url http://127.0.0.1:" + std::to_string(server->port()) + " --chromium " +
                              parley_test::kChromium + " --screenshots '" + shots.string() + "'";
  std::string output;
  const int rc = parley_test::run_shell(command, output);
  ASSERT_EQ(rc, 0) << "the browser big room test failed; its output:\n"
                   << output << "\nparleyd stderr:\n" << server->stderr_text();
  EXPECT_NE(output.find("browser big room e2e: all 3 checks passed"), std::string::npos) << output;
  EXPECT_EQ(output.find("not ok"), std::string::npos) << output;
  EXPECT_TRUE(fs::exists(shots / "big-room.png")) << "missing screenshot " << (shots / "big-room.png");
  std::printf("%s", output.c_str());
}

}  // namespace
