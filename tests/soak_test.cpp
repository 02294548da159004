// The short attack soak (bench/soak.sh --short, issue 13): every attack mix in two waves against a
// real parleyd while legit users chat; the script asserts the memory budget, memory given back
// after each wave, legit handshakes under 1 s and no legit message lost. About a minute.
#include <gtest/gtest.h>

#include <string>

#include "tests/support/parleyd_process.h"
#include "tests/support/shell_command.h"

namespace {

TEST(SoakTest, ShortAttackWavesHoldEveryPromise) {
  std::filesystem::path root = parley_test::find_repo_root("bench/soak.sh");
  ASSERT_FALSE(root.empty()) << "bench/soak.sh not found from the working directory";
  std::string output;
  int status = parley_test::run_shell("cd '" + root.string() + "' && PARLEY_BUILD_DIR='" +
                                          std::filesystem::absolute(parley_test::build_dir()).string() +
                                          "' bash bench/soak.sh --short 2>&1",
                                      output);
  std::printf("%s", parley_test::output_tail(output, 4000).c_str());
  EXPECT_EQ(status, 0) << "bench/soak.sh --short failed";
  EXPECT_NE(output.find("soak: all checks held"), std::string::npos);
}

}  // namespace
