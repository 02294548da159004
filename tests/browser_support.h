#pragma once
// What the browser tests (tests/browser_*_test.cpp) need before they can
// drive Chromium: Debian's chromium package and tests/browser's node modules. Test support only.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/support/shell_command.h"

namespace parley_test {

inline constexpr const char* kChromium = "/usr/bin/chromium";

// Makes sure /usr/bin/chromium exists, installing Debian's chromium package when it does not.
// Returns an empty string on success, else why it is not there.
inline std::string ensure_chromium() {
  if (access(kChromium, X_OK) == 0) return {};
  std::string output;
  if (run_shell("command -v apt-get", output) != 0) {
    return std::string(kChromium) + " is missing and this machine has no apt-get to install it with";
  }
  const std::string sudo = geteuid() == 0 ? "" : "sudo -n ";
  std::fprintf(stderr, "[browser e2e] %s is missing: installing Debian's chromium package\n", kChromium);
  int rc = run_shell("timeout 1500 sh -c '" + sudo + "apt-get update -qq && DEBIAN_FRONTEND=noninteractive " +
                         sudo + "apt-get install -y -qq chromium'",
                     output);
  if (rc == 0 && access(kChromium, X_OK) == 0) return {};
  std::string show;
  if (run_shell("apt-cache show chromium", show) != 0) {
    return "Chromium cannot be installed on this machine: apt has no package named 'chromium' (apt-cache show "
           "chromium failed). This test needs Debian's chromium at " + std::string(kChromium) +
           ".\napt-get said:\n" + output_tail(output) + "\napt-cache said:\n" + output_tail(show, 500);
  }
  return "apt-get install chromium failed (exit " + std::to_string(rc) + "):\n" + output_tail(output);
}

// Makes sure the script's node modules are installed (from package-lock.json).
inline std::string ensure_node_modules(const std::filesystem::path& root) {
  std::string output;
  if (run_shell("command -v node && command -v npm", output) != 0) {
    return "node and npm are needed to drive the browser, and are not on PATH";
  }
  const std::filesystem::path dir = root / "tests/browser";
  if (std::filesystem::exists(dir / "node_modules/playwright-core/package.json")) return {};
  std::fprintf(stderr, "[browser e2e] installing playwright-core into %s/node_modules\n", dir.c_str());
  output.clear();
  int rc = run_shell("timeout 600 npm ci --prefix '" + dir.string() + "' --no-audit --no-fund", output);
  if (rc != 0 || !std::filesystem::exists(dir / "node_modules/playwright-core/package.json")) {
    return "npm ci in tests/browser failed (exit " + std::to_string(rc) + "):\n" + output_tail(output);
  }
  return {};
}

// Everything a browser test needs before it starts: the repository root (found from `script`,
// a path relative to it, stored in `root`), Chromium and the node modules. Empty on success, else
// why the test cannot run.
inline std::string prepare_browser_test(const char* script, std::filesystem::path& root) {
  root = find_repo_root(script);
  if (root.empty()) return "cannot find " + std::string(script) + "; run the tests from the repository";
  std::string problem = ensure_chromium();
  return problem.empty() ? ensure_node_modules(root) : problem;
}

}  // namespace parley_test
