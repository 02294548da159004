// Every shell command in README.md's fenced blocks runs verbatim against a server started the way
// `make run` starts it (issue 16: "README stays the front door and every command in it works").
//
// Convention (checked here, so a new block cannot slip past): every fenced block in README.md
// carries an info string. ```console blocks hold commands: a line "$ CMD" is a command, the lines
// after it (up to the next "$ " or the end of the block) are output it must print, where "..."
// stands for anything. ```text blocks are output or reference (the options list) and hold no
// commands. A command is either run here or listed in kSkipped with the reason it cannot be.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/parleyd_process.h"
#include "tests/support/shell_command.h"

namespace {

// Commands that cannot run inside a test, each with why. Keep it small: a command belongs here
// only when running it would be wrong in a test, not when it fails.
const std::map<std::string, std::string> kSkipped = {
    {"make run", "builds, then serves in the foreground until Ctrl-C; this test starts parleyd "
                 "the same way (build/parleyd --listen 127.0.0.1:<port>, default store) instead"},
    {"make test", "runs the whole suite, this test included (recursion, minutes)"},
};

// Seconds each command may take before it counts as hung (killed by timeout(1)).
constexpr int kCommandTimeoutSeconds = 20;

// One "$ CMD" line of a console block and the output lines shown under it.
struct ReadmeCommand {
  std::string command;
  std::vector<std::string> expected;  // each: fragments separated by "..."
  int line = 0;                       // README.md line of the command
};

struct ReadmeScan {
  std::vector<ReadmeCommand> commands;
  std::vector<std::string> problems;  // blocks without an info string or with an unknown one
};

ReadmeScan scan_readme(const std::string& text) {
  ReadmeScan scan;
  std::istringstream in(text);
  std::string tag;
  bool in_block = false;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    // A fence may be indented (inside a list item); it opens with its info string.
    const size_t first = line.find_first_not_of(' ');
    if (first != std::string::npos && line.compare(first, 3, "```") == 0) {
      if (in_block) {
        in_block = false;
        continue;
      }
      in_block = true;
      tag = line.substr(first + 3);
      if (tag != "console" && tag != "text") {
        scan.problems.push_back("README.md:" + std::to_string(number) + ": fenced block tagged '" + tag +
                                "': tag it console (commands, \"$ \" lines) or text (no commands)");
      }
      continue;
    }
    if (!in_block || tag != "console") continue;
    const std::string body = first == std::string::npos ? std::string() : line.substr(first);
    if (body.compare(0, 2, "$ ") == 0) {
      scan.commands.push_back({body.substr(2), {}, number});
    } else if (!body.empty() && !scan.commands.empty()) {
      scan.commands.back().expected.push_back(body);
    }
  }
  return scan;
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// The command as run here: the test server's port for 8080, $PARLEY_BUILD_DIR for build/ (the
// ASan run uses build/asan), single quotes escaped for sh -c '...'.
std::string rewrite(std::string command, uint16_t port, const std::string& build) {
  replace_all(command, "127.0.0.1:8080", "127.0.0.1:" + std::to_string(port));
  replace_all(command, "localhost:8080", "localhost:" + std::to_string(port));
  if (build != "build") {
    std::string out;
    for (size_t i = 0; i < command.size(); ++i) {
      const bool word_start = i == 0 || command[i - 1] == ' ' || command[i - 1] == '=' || command[i - 1] == '|';
      if (word_start && command.compare(i, 6, "build/") == 0) {
        out += build + "/";
        i += 5;
      } else {
        out += command[i];
      }
    }
    command = out;
  }
  replace_all(command, "'", "'\\''");
  return command;
}

// True when some line of `output` holds the fragments of `expected` ("..." = anything) in order.
bool output_shows(const std::string& output, const std::string& expected) {
  std::vector<std::string> fragments;
  size_t from = 0;
  for (size_t at; (at = expected.find("...", from)) != std::string::npos; from = at + 3) {
    fragments.push_back(expected.substr(from, at - from));
  }
  fragments.push_back(expected.substr(from));
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    size_t pos = 0;
    bool all = true;
    for (const std::string& fragment : fragments) {
      pos = line.find(fragment, pos);
      if (pos == std::string::npos) {
        all = false;
        break;
      }
      pos += fragment.size();
    }
    if (all) return true;
  }
  return false;
}

std::string read_readme(const std::filesystem::path& root) {
  std::ifstream file(root / "README.md");
  std::stringstream all;
  all << file.rdbuf();
  return all.str();
}

TEST(ReadmeCommands, EveryFencedBlockIsTaggedAndEverySkipStillExists) {
  const std::filesystem::path root = parley_test::find_repo_root("README.md");
  ASSERT_FALSE(root.empty()) << "README.md not found from the working directory up";
  const ReadmeScan scan = scan_readme(read_readme(root));
  for (const std::string& problem : scan.problems) ADD_FAILURE() << problem;
  for (const auto& [command, reason] : kSkipped) {
    bool found = false;
    for (const ReadmeCommand& c : scan.commands) found = found || c.command == command;
    EXPECT_TRUE(found) << "kSkipped lists '" << command << "', which README.md no longer has: drop it";
  }
}

TEST(ReadmeCommands, EveryCommandRunsVerbatimAgainstAMakeRunServer) {
  const std::filesystem::path root = parley_test::find_repo_root("README.md");
  ASSERT_FALSE(root.empty()) << "README.md not found from the working directory up";
  const ReadmeScan scan = scan_readme(read_readme(root));

  // `make run` is `build/parleyd --listen 127.0.0.1:8080` in the repository: default options, the
  // default store parley.db in the working directory. Here: a free port and a fresh store file,
  // with the defaults the test harness would otherwise override given explicitly.
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("parley_readme_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir, ec);
  parley_test::ParleydProcess server({"--listen", "127.0.0.1:0", "--store", (dir / "parley.db").string(),
                                      "--ping-interval", "30000", "--resume-window", "120"});
  ASSERT_TRUE(server.ok()) << server.error();
  EXPECT_NE(server.stdout_text().find("listening on 127.0.0.1:"), std::string::npos);

  const std::string build = parley_test::build_dir();
  int ran = 0;
  for (const ReadmeCommand& c : scan.commands) {
    if (kSkipped.count(c.command)) continue;
    ++ran;
    const std::string shell = "cd '" + root.string() + "' && timeout -k 2 " + std::to_string(kCommandTimeoutSeconds) +
                              " sh -c '" + rewrite(c.command, server.port(), build) + "' </dev/null";
    std::string output;
    const int status = parley_test::run_shell(shell, output);
    EXPECT_EQ(status, 0) << "README.md:" << c.line << ": `" << c.command << "` exited " << status
                         << (status == 124 ? " (timed out)" : "") << "\n" << parley_test::output_tail(output);
    for (const std::string& expected : c.expected) {
      EXPECT_TRUE(output_shows(output, expected))
          << "README.md:" << c.line << ": `" << c.command << "` did not print '" << expected << "'\n"
          << parley_test::output_tail(output);
    }
  }
  EXPECT_GE(ran, 4) << "README.md should show a few commands to try against `make run`";
  EXPECT_TRUE(server.running()) << "a README command stopped the server: " << server.status_text();
  server.stop();
  std::filesystem::remove_all(dir, ec);
}

TEST(ReadmeCommands, OutputMatchingTreatsDotsAsAnythingWithinOneLine) {
  EXPECT_TRUE(output_shows("a\nparley_connections 3\n", "parley_connections ..."));
  EXPECT_TRUE(output_shows("x ok y\n", "ok"));
  EXPECT_FALSE(output_shows("parley_\nconnections 3\n", "parley_...connections"));
  EXPECT_FALSE(output_shows("ready\n", "ok"));
  EXPECT_EQ(rewrite("curl 127.0.0.1:8080/x 'a'", 4242, "build"), "curl 127.0.0.1:4242/x '\\''a'\\''");
  EXPECT_EQ(rewrite("build/parley-cli x | build/y", 1, "build/asan"), "build/asan/parley-cli x | build/asan/y");
}

}  // namespace
