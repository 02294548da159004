#include "tests/support/shell_command.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

namespace parley_test {

int run_shell(const std::string& command, std::string& output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int rerun_this_binary(const std::string& env, const std::string& filter, std::string& output) {
  char self[4096];
  ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
  if (length <= 0) return -1;
  self[length] = '\0';
  return run_shell(env + " '" + self + "' --gtest_filter='" + filter + "' --gtest_brief=1", output);
}

std::string output_tail(const std::string& text, size_t max) {
  return text.size() <= max ? text : "..." + text.substr(text.size() - max);
}

std::filesystem::path find_repo_root(const std::string& relative_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (fs::path dir = fs::current_path(ec); !dir.empty(); dir = dir.parent_path()) {
    if (fs::exists(dir / relative_path, ec)) return dir;
    if (dir == dir.parent_path()) break;
  }
  return {};
}

}  // namespace parley_test
