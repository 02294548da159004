#pragma once
// parley-token: mints and verifies HS256 tokens for parleyd (chat/auth_token.h). The whole
// program lives here so tests can run it in-process; tools/token_main.cpp only forwards argv.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace tools {

// Exit codes.
inline constexpr int kTokenExitOk = 0;         // token printed, or the token verified
inline constexpr int kTokenExitRejected = 1;   // --verify: the token is not valid
inline constexpr int kTokenExitUsage = 2;      // bad options, unreadable or short secret

// Runs parley-token with `args` (without the program name), writing results to `out` and
// diagnostics to `err`. `now_s` is the clock (seconds since the epoch) unless --now is given.
// `in` is read for "--verify -". Returns one of the exit codes above.
int run_token_tool(const std::vector<std::string>& args, std::FILE* in, std::FILE* out,
                   std::FILE* err, uint64_t now_s);

// Prints the usage text to `out`.
void print_token_usage(std::FILE* out);

}  // namespace tools
