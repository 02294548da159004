// permessage-deflate interop with independent client implementations: Node's `ws`
// (tests/interop/ws_deflate_client.mjs, installed with npm ci from tests/interop/package-lock.json)
// and Python's `websockets` (Debian's python3-websockets, run with Debian's /usr/bin/python3), both
// of which offer the extension by default, send text and binary messages of 0 B to 200 KB
// compressed, check every echo and that parleyd's echoes came compressed. Autobahn's own
// permessage-deflate (Debian's python3-autobahn) replays every client offer of Autobahn|Testsuite
// cases 13.1-13.7 with every size and auto-fragment size of cases 12.*/13.*. Missing tools are
// installed first; a test is skipped only when its tool cannot be.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>

#include "tests/support/parleyd_process.h"
#include "tests/support/shell_command.h"

namespace parley_test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kNodeScript = "tests/interop/ws_deflate_client.mjs";
constexpr const char* kPythonScript = "tests/interop/websockets_deflate_client.py";
constexpr const char* kAutobahnScript = "tests/interop/autobahn_deflate_client.py";
constexpr const char* kDebianPython = "/usr/bin/python3";

// Installs the interop scripts' node modules when missing; empty on success, else why not.
std::string ensure_ws_module(const fs::path& root) {
  std::string output;
  if (run_shell("command -v node && command -v npm", output) != 0) return "node and npm are not on PATH";
  const fs::path dir = root / "tests/interop";
  if (fs::exists(dir / "node_modules/ws/package.json")) return {};
  std::fprintf(stderr, "[deflate interop] installing ws into %s/node_modules\n", dir.c_str());
  output.clear();
  const int rc = run_shell("timeout 300 npm ci --prefix '" + dir.string() + "' --no-audit --no-fund", output);
  if (rc != 0 || !fs::exists(dir / "node_modules/ws/package.json")) {
    return "npm ci in tests/interop failed (exit " + std::to_string(rc) + "):\n" + output_tail(output);
  }
  return {};
}

// Makes sure Debian's python3 can import `module`, installing Debian `package` if needed.
std::string ensure_python_module(const std::string& module, const std::string& package) {
  std::string output;
  const std::string probe = std::string(kDebianPython) + " -c 'import " + module + "'";
  if (run_shell(probe, output) == 0) return {};
  if (run_shell("command -v apt-get", output) != 0) return package + " is missing and there is no apt-get";
  const std::string sudo = geteuid() == 0 ? "" : "sudo -n ";
  std::fprintf(stderr, "[deflate interop] installing Debian's %s\n", package.c_str());
  output.clear();
  const int rc = run_shell("timeout 900 sh -c '" + sudo + "apt-get update -qq && DEBIAN_FRONTEND=noninteractive " +
                               sudo + "apt-get install -y -qq " + package + "'",
                           output);
  if (rc == 0 && run_shell(probe, output) == 0) return {};
  return "apt-get install " + package + " failed (exit " + std::to_string(rc) + "):\n" + output_tail(output);
}

// Runs one interop script against a fresh parleyd; returns its output, with the exit status.
int run_against_parleyd(const fs::path& root, const std::string& command_prefix, std::string& output) {
  ParleydProcess server;
  if (!server.ok()) {
    output = "parleyd did not start: " + server.error();
    return -1;
  }
  return run_shell("cd '" + root.string() + "' && timeout 150 " + command_prefix + " " + std::to_string(server.port()),
                   output);
}

// Finds `script`, makes sure its tool is there (`ensure` returns why not) and runs
// `interpreter script PORT` against a fresh parleyd; the script must print a line starting with
// `expected_start`, which is shown on stderr.
void expect_script_passes(const char* script, const std::function<std::string()>& ensure, const std::string& interpreter,
                          const std::string& expected_start, const char* what) {
  const fs::path root = find_repo_root(script);
  ASSERT_FALSE(root.empty()) << "cannot find " << script << " from the working directory";
  const std::string missing = ensure();
  if (!missing.empty()) GTEST_SKIP() << what << " cannot be installed here: " << missing;
  std::string output;
  const int rc = run_against_parleyd(root, interpreter + " " + script, output);
  EXPECT_EQ(rc, 0) << output;
  EXPECT_EQ(output.rfind(expected_start, 0), 0u) << output;
  std::fprintf(stderr, "[deflate interop] %s: %s", what, output.c_str());
}

TEST(DeflateInterop, NodeWsClientExchangesCompressedMessages) {
  const fs::path root = find_repo_root(kNodeScript);
  expect_script_passes(kNodeScript, [&] { return ensure_ws_module(root); }, "node", "OK ", "Node's ws");
}

TEST(DeflateInterop, PythonWebsocketsClientExchangesCompressedMessages) {
  expect_script_passes(kPythonScript, [] { return ensure_python_module("websockets", "python3-websockets"); },
                       kDebianPython, "OK ", "Python's websockets");
}

TEST(DeflateInterop, AutobahnClientPassesEveryCase13OfferAndSize) {
  expect_script_passes(kAutobahnScript, [] { return ensure_python_module("autobahn", "python3-autobahn"); },
                       kDebianPython, "OK 126 cases", "Autobahn (python3-autobahn)");
}

}  // namespace
}  // namespace parley_test
