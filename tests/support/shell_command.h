#pragma once
// Running helper programs (node, python, apt-get, npm) from integration tests. Test support only.
#include <filesystem>
#include <string>

namespace parley_test {

// Runs `command` with sh -c, stdout and stderr together; returns the exit status (-1 if it did
// not run or was killed) and appends what it printed to `output`.
int run_shell(const std::string& command, std::string& output);

// The last `max` bytes of `text` (with "..." in front when cut), for failure messages.
std::string output_tail(const std::string& text, size_t max = 3000);

// The nearest directory, from the working directory up, that holds `relative_path`; empty if none.
std::filesystem::path find_repo_root(const std::string& relative_path);

// Runs this test binary again in a child with `env` ("NAME=value ...") in its environment and
// --gtest_filter=`filter` (brief output); returns the child's exit status (-1 if it did not run)
// and appends what it printed to `output`. For re-running whole suites in another mode.
int rerun_this_binary(const std::string& env, const std::string& filter, std::string& output);

}  // namespace parley_test
