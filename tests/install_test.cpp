// `make install`: every file lands under DESTDIR, parleyd(8) renders and documents every option
// of `parleyd --help`, the installed configuration is valid and survives a reinstall, and
// `systemd-analyze verify` accepts the installed unit. Installs the
// binaries already built in PARLEY_BUILD_DIR (NO_BUILD=1: make compiles nothing here).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/parleyd_process.h"
#include "tests/support/shell_command.h"

namespace {

namespace fs = std::filesystem;
using parley_test::output_tail;
using parley_test::run_shell;

constexpr const char* kUnitSource = "chat/parleyd/parleyd.service.in";
const std::vector<std::string> kPrograms = {"parleyd", "parley-load", "parley-idle", "parley-cli", "parley-token"};

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Single-quoted for sh -c.
std::string quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

bool have_command(const std::string& name) {
  std::string ignored;
  return run_shell("command -v " + name + " >/dev/null", ignored) == 0;
}

// One `make install DESTDIR=<tmp> PREFIX=/usr` for the whole suite (it is the thing under test;
// each test checks one aspect of its result).
class InstallTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = parley_test::find_repo_root(kUnitSource);
    char pattern[] = "/tmp/parley_install_XXXXXX";
    if (root_.empty() || mkdtemp(pattern) == nullptr) return;
    destdir_ = pattern;
    build_ = fs::absolute(parley_test::build_dir());
    // The test may run under `make test`: the parent's MAKEFLAGS (jobserver fds) must not leak in.
    install_command_ = "cd " + quote(root_.string()) +
                       " && env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -s install NO_BUILD=1 BUILD=" +
                       quote(build_.string()) + " DESTDIR=" + quote(destdir_.string()) + " PREFIX=/usr";
    install_status_ = run_shell(install_command_, install_output_);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!destdir_.empty()) fs::remove_all(destdir_, ec);
  }
  void SetUp() override {
    ASSERT_FALSE(root_.empty()) << "run from inside the repository (" << kUnitSource << " not found)";
    ASSERT_FALSE(destdir_.empty()) << "mkdtemp failed";
    ASSERT_EQ(install_status_, 0) << "make install failed:\n" << output_tail(install_output_);
  }

  static fs::path root_, destdir_, build_;
  static int install_status_;
  static std::string install_command_, install_output_;
};
fs::path InstallTest::root_, InstallTest::destdir_, InstallTest::build_;
int InstallTest::install_status_ = -1;
std::string InstallTest::install_command_, InstallTest::install_output_;

TEST_F(InstallTest, EveryFileLandsUnderDestdir) {
  for (const std::string& program : kPrograms) {
    fs::path path = destdir_ / "usr/bin" / program;
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0) << path << " not installed";
    EXPECT_EQ(st.st_mode & 07777, 0755u) << path;
    EXPECT_EQ(fs::file_size(path), fs::file_size(build_ / program)) << path << " is not the built binary";
  }
  EXPECT_TRUE(fs::is_regular_file(destdir_ / "usr/share/man/man8/parleyd.8"));
  EXPECT_TRUE(fs::is_regular_file(destdir_ / "usr/lib/systemd/system/parleyd.service"));
  // The example configuration, as the service's file and as documentation.
  const std::string example = read_file(root_ / "docs/parley.toml");
  ASSERT_FALSE(example.empty());
  EXPECT_EQ(read_file(destdir_ / "etc/parley/parley.toml"), example);
  EXPECT_EQ(read_file(destdir_ / "usr/share/doc/parley/parley.toml"), example);
  // Nothing else: a stray file would be a packaging surprise.
  size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(destdir_))
    if (entry.is_regular_file()) ++files;
  EXPECT_EQ(files, kPrograms.size() + 4);
  // The installed server runs and is the same version as the built one.
  std::string installed, built;
  ASSERT_EQ(run_shell(quote((destdir_ / "usr/bin/parleyd").string()) + " --version", installed), 0) << installed;
  ASSERT_EQ(run_shell(quote((build_ / "parleyd").string()) + " --version", built), 0) << built;
  EXPECT_EQ(installed, built);
}

// The installed configuration is valid for the installed server (the unit starts with it), and a
// reinstall keeps an operator's edits to it while refreshing the example next to the docs.
TEST_F(InstallTest, ConfigIsValidAndAReinstallKeepsTheOperatorsEdits) {
  const fs::path config = destdir_ / "etc/parley/parley.toml";
  std::string output;
  ASSERT_EQ(run_shell(quote((destdir_ / "usr/bin/parleyd").string()) + " --check-config --config " +
                          quote(config.string()),
                      output),
            0)
      << output;
  EXPECT_NE(output.find(config.string() + ":"), std::string::npos) << "no value came from the file: " << output;

  const std::string original = read_file(config);
  const std::string edited = original + "\nrate-limit = 7  # the operator's edit\n";
  std::ofstream(config, std::ios::trunc) << edited;
  std::ofstream(destdir_ / "usr/share/doc/parley/parley.toml", std::ios::trunc) << "stale";
  output.clear();
  ASSERT_EQ(run_shell(install_command_, output), 0) << output_tail(output);
  EXPECT_EQ(read_file(config), edited);
  EXPECT_NE(output.find("kept " + config.string()), std::string::npos) << output;
  EXPECT_EQ(read_file(destdir_ / "usr/share/doc/parley/parley.toml"), read_file(root_ / "docs/parley.toml"));
  std::ofstream(config, std::ios::trunc) << original;  // as the other tests expect it
}

TEST_F(InstallTest, ManPageRendersAndDocumentsEveryOption) {
  const fs::path page = destdir_ / "usr/share/man/man8/parleyd.8";
  const std::string roff = read_file(page);
  ASSERT_NE(roff.find(".TH PARLEYD 8"), std::string::npos) << roff.substr(0, 300);
  for (const char* section : {".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH SIGNALS", ".SH FILES"})
    EXPECT_NE(roff.find(section), std::string::npos) << section;
  // Installed paths in the page are the final ones, never DESTDIR.
  EXPECT_NE(roff.find("/usr/lib/systemd/system/parleyd.service"), std::string::npos);
  EXPECT_EQ(roff.find(destdir_.string()), std::string::npos);

  std::string text;
  if (have_command("man") && have_command("groff")) {
    std::string warnings;
    // --warnings: groff reports roff mistakes (bad escapes, unknown requests) on stderr.
    ASSERT_EQ(run_shell("MANWIDTH=200 man --warnings -l " + quote(page.string()) + " >/dev/null", warnings), 0) << warnings;
    EXPECT_EQ(warnings, "") << "roff warnings in parleyd.8";
    ASSERT_EQ(run_shell("MANWIDTH=200 MAN_KEEP_FORMATTING=0 man -l " + quote(page.string()) + " | col -b", text), 0) << text;
    EXPECT_NE(text.find("PARLEYD(8)"), std::string::npos) << output_tail(text);
  } else {
    text = roff;  // no renderer: check the source, with roff's \- for "-"
    for (size_t at; (at = text.find("\\-")) != std::string::npos;) text.replace(at, 2, "-");
  }
  // Every option --help lists is in the rendered page (it is generated from --help).
  std::string help;
  ASSERT_EQ(run_shell(quote((build_ / "parleyd").string()) + " --help", help), 0) << help;
  std::istringstream lines(help);
  size_t options = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("  --", 0) != 0) continue;
    std::string option = line.substr(2, line.find_first_of(" ,", 2) - 2);
    ++options;
    EXPECT_NE(text.find(option), std::string::npos) << option << " missing from the man page";
  }
  EXPECT_GE(options, 20u) << "--help parsed into too few options:\n" << help;
}

class InstalledUnitTest : public InstallTest {
 protected:
  void SetUp() override {
    InstallTest::SetUp();
    if (HasFatalFailure()) return;
    if (!have_command("systemd-analyze")) GTEST_SKIP() << "systemd-analyze is not installed: the unit cannot be verified";
  }
  // `systemd-analyze verify` checks that ExecStart's binary exists, so it runs on a copy of the
  // installed unit whose ExecStart names the DESTDIR copy (the only line changed), with MANPATH
  // at the DESTDIR man pages so that Documentation=man:parleyd(8) is checked too.
  int verify(const std::string& unit_text, std::string& output) {
    fs::path dir = destdir_ / "verify";
    fs::create_directories(dir);
    std::ofstream(dir / "parleyd.service") << unit_text;
    return run_shell("MANPATH=" + quote((destdir_ / "usr/share/man").string()) + " systemd-analyze verify " +
                         quote((dir / "parleyd.service").string()),
                     output);
  }
  std::string installed_unit() { return read_file(destdir_ / "usr/lib/systemd/system/parleyd.service"); }
  std::string unit_for_verify() {
    std::string text = installed_unit();
    const std::string exec = "ExecStart=/usr/bin/parleyd ";
    size_t at = text.find(exec);
    if (at == std::string::npos) return {};
    return text.replace(at, exec.size(), "ExecStart=" + (destdir_ / "usr/bin/parleyd").string() + " ");
  }
};

TEST_F(InstalledUnitTest, SystemdAnalyzeVerifyPasses) {
  std::string unit = installed_unit();
  ASSERT_NE(unit.find("ExecStart=/usr/bin/parleyd --config /etc/parley/parley.toml $PARLEYD_ARGS"), std::string::npos)
      << unit;
  for (const char* placeholder : {"@BINDIR@", "@SYSCONFDIR@", "@UNITDIR@"})
    EXPECT_EQ(unit.find(placeholder), std::string::npos) << placeholder << " was left in the unit";
  std::string rewritten = unit_for_verify();
  ASSERT_FALSE(rewritten.empty());
  std::string output;
  EXPECT_EQ(verify(rewritten, output), 0) << output;
  EXPECT_EQ(output, "") << "systemd-analyze verify warned";  // unknown keys only warn
}

// The check can fail: a unit naming a missing binary, or with a misspelt key, is reported.
TEST_F(InstalledUnitTest, VerifyCatchesABrokenUnit) {
  std::string output;
  std::string missing = installed_unit();  // ExecStart=/usr/bin/parleyd, absent on this machine
  if (fs::exists("/usr/bin/parleyd")) GTEST_SKIP() << "/usr/bin/parleyd exists here";
  EXPECT_NE(verify(missing, output), 0) << output;
  EXPECT_NE(output.find("not executable"), std::string::npos) << output;
  output.clear();
  std::string misspelt = unit_for_verify();
  misspelt.replace(misspelt.find("ProtectHome="), 12, "ProtectHomme=");
  verify(misspelt, output);
  EXPECT_NE(output.find("ProtectHomme"), std::string::npos) << output;
}

TEST_F(InstalledUnitTest, HardeningAsDocumented) {
  const std::string unit = installed_unit();
  for (const char* line :
       {"DynamicUser=yes", "StateDirectory=parley", "WorkingDirectory=%S/parley", "LimitNOFILE=1048576",
        "ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes", "PrivateTmp=yes", "PrivateDevices=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes", "Restart=on-failure", "KillSignal=SIGTERM",
        "KillMode=mixed"})
    EXPECT_NE(unit.find(std::string("\n") + line), std::string::npos) << line;
  // systemd's own score of the sandbox (0 = fully locked down, 10 = none): 1.4 when written.
  std::string output;
  std::string rewritten = unit_for_verify();
  fs::path copy = destdir_ / "verify-security" / "parleyd.service";
  fs::create_directories(copy.parent_path());
  std::ofstream(copy) << rewritten;
  int status = run_shell("systemd-analyze security --offline=yes --threshold=20 " + quote(copy.string()), output);
  EXPECT_EQ(status, 0) << "exposure above 2.0:\n" << output_tail(output);
  EXPECT_NE(output.find("Overall exposure level"), std::string::npos) << output_tail(output);
}

}  // namespace
