#pragma once
// Runs <build>/parley-load as a child for the integration tests (tests/load_*_test.cpp): start
// it with its arguments plus --json, wait for it with a time limit (then SIGKILL), and read
// numbers out of the JSON it wrote.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/parleyd_process.h"

namespace parley_test {

struct LoadRun {
  int exit_code = -1;  // -1 when it did not exit by itself in time
  std::string output;  // stdout and stderr
  std::string json;
};

// A parley-load child still running (start_load()); wait_load() reaps it.
struct LoadProcess {
  pid_t pid = -1;
  std::string json_path;
  std::string output_path;
};

// A fresh empty file under $TMPDIR (or /tmp) whose name carries `tag`.
inline std::string load_temp_path(const char* tag) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/parley-load-" + tag + "-XXXXXX";
  const int fd = mkstemp(pattern.data());
  if (fd >= 0) close(fd);
  return pattern;
}

inline std::string read_whole_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Starts <build>/parley-load with `args` plus --json, its output to a temporary file.
inline LoadProcess start_load(std::vector<std::string> args) {
  LoadProcess process;
  const std::string binary = build_dir() + "/parley-load";
  process.json_path = load_temp_path("json");
  process.output_path = load_temp_path("out");
  args.insert(args.begin(), binary);
  args.push_back("--json");
  args.push_back(process.json_path);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int output_fd = open(process.output_path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  process.pid = fork();
  if (process.pid == 0) {
    dup2(output_fd, STDOUT_FILENO);
    dup2(output_fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(output_fd);
  return process;
}

// Waits at most `limit` for `process` (then kills it), and collects its output and JSON.
inline LoadRun wait_load(const LoadProcess& process, std::chrono::seconds limit = std::chrono::seconds(20)) {
  LoadRun run;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(process.pid, &status, WNOHANG);
    if (done == process.pid) {
      run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(process.pid, SIGKILL);
      waitpid(process.pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  run.output = read_whole_file(process.output_path);
  run.json = read_whole_file(process.json_path);
  unlink(process.output_path.c_str());
  unlink(process.json_path.c_str());
  return run;
}

// Runs <build>/parley-load with `args` plus --json, waiting at most `limit`.
inline LoadRun run_load(std::vector<std::string> args, std::chrono::seconds limit = std::chrono::seconds(20)) {
  return wait_load(start_load(std::move(args)), limit);
}

// The first number after "key": in parley-load's JSON (keys it writes once, or the first of them).
inline double json_number(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\": ";
  const size_t at = json.find(needle);
  if (at == std::string::npos) {
    ADD_FAILURE() << "no " << key << " in " << json;
    return -1;
  }
  return std::strtod(json.c_str() + at + needle.size(), nullptr);
}

}  // namespace parley_test
