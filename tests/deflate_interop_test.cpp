// permessage-deflate interop with two independent client implementations, both of which offer
// the extension by default: Node's `ws` (tests/interop/ws_deflate_client.mjs, installed with
// npm ci from tests/interop/package-lock.json) and Python's `websockets` (Debian's
// python3-websockets, run with Debian's /usr/bin/python3). Each script sends text and binary
// messages of 0 B to 200 KB compressed, checks every echo, and checks that parleyd's echoes came
// compressed. Missing tools are installed first; the test is skipped only when they cannot be.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/support/parleyd_process.h"
#include "tests/support/shell_command.h"

namespace parley_test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kNodeScript = "tests/interop/ws_deflate_client.mjs";
constexpr const char* kPythonScript = "tests/interop/websockets_deflate_client.py";
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

// Makes sure Debian's python3 can import websockets, installing python3-websockets if needed.
std::string ensure_python_websockets() {
  std::string output;
  const std::string probe = std::string(kDebianPython) + " -c 'import websockets'";
  if (run_shell(probe, output) == 0) return {};
  if (run_shell("command -v apt-get", output) != 0) return "python3-websockets is missing and there is no apt-get";
  const std::string sudo = geteuid() == 0 ? "" : "sudo -n ";
  std::fprintf(stderr, "[deflate interop] installing Debian's python3-websockets\n");
  output.clear();
  const int rc = run_shell("timeout 900 sh -c '" + sudo + "apt-get update -qq && DEBIAN_FRONTEND=noninteractive " +
                               sudo + "apt-get install -y -qq python3-websockets'",
                           output);
  if (rc == 0 && run_shell(probe, output) == 0) return {};
  return "apt-get install python3-websockets failed (exit " + std::to_string(rc) + "):\n" + output_tail(output);
}

// Runs one interop script against a fresh parleyd; returns its output, with the exit status.
int run_against_parleyd(const fs::path& root, const std::string& command_prefix, std::string& output) {
  ParleydProcess server;
  if (!server.ok()) {
    output = "parleyd did not start: " + server.error();
    return -1;
  }
  return run_shell("cd '" + root.string() + "' && timeout 60 " + command_prefix + " " + std::to_string(server.port()),
                   output);
}

TEST(DeflateInterop, NodeWsClientExchangesCompressedMessages) {
  const fs::path root = find_repo_root(kNodeScript);
  ASSERT_FALSE(root.empty()) << "cannot find " << kNodeScript << " from the working directory";
  const std::string missing = ensure_ws_module(root);
  if (!missing.empty()) GTEST_SKIP() << "Node's ws cannot be installed here: " << missing;
  std::string output;
  const int rc = run_against_parleyd(root, std::string("node ") + kNodeScript, output);
  EXPECT_EQ(rc, 0) << output;
  EXPECT_EQ(output.rfind("OK ", 0), 0u) << output;
  EXPECT_NE(output.find("permessage-deflate"), std::string::npos) << output;
  std::fprintf(stderr, "[deflate interop] node ws: %s", output.c_str());
}

TEST(DeflateInterop, PythonWebsocketsClientExchangesCompressedMessages) {
  const fs::path root = find_repo_root(kPythonScript);
  ASSERT_FALSE(root.empty()) << "cannot find " << kPythonScript << " from the working directory";
  const std::string missing = ensure_python_websockets();
  if (!missing.empty()) GTEST_SKIP() << "Python's websockets cannot be installed here: " << missing;
  std::string output;
  const int rc = run_against_parleyd(root, std::string(kDebianPython) + " " + kPythonScript, output);
  EXPECT_EQ(rc, 0) << output;
  EXPECT_EQ(output.rfind("OK ", 0), 0u) << output;
  EXPECT_NE(output.find("client_no_context_takeover"), std::string::npos) << output;
  std::fprintf(stderr, "[deflate interop] python websockets: %s", output.c_str());
}

}  // namespace
}  // namespace parley_test
