// parley-token: mints and verifies parleyd's HS256 tokens (see tools/token_tool.h, --help).
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "tools/token_tool.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const int code = tools::run_token_tool(args, stdin, stdout, stderr,
                                         static_cast<uint64_t>(std::time(nullptr)));
  if (std::fflush(stdout) != 0) return 2;
  return code;
}
