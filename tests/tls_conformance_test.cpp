// Autobahn cases 1.* to 10.* over wss://: runs this test binary's own EchoConformance suites
// (tests/echo_conformance_test.cpp) again in a child process with PARLEY_ECHO_OVER_TLS=1, so
// every case is checked through TLS (octet chops become one-byte records) without a second copy.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

TEST(TlsConformance, AutobahnCases1To10PassOverWss) {
  if (std::getenv("PARLEY_ECHO_OVER_TLS") != nullptr) GTEST_SKIP() << "already the TLS run";
  char self[4096];
  ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(length, 0);
  self[length] = '\0';
  std::string command = std::string("PARLEY_ECHO_OVER_TLS=1 '") + self +
                        "' --gtest_filter='EchoConformance*:-EchoConformanceHttp*' --gtest_brief=1 2>&1";
  FILE* child = popen(command.c_str(), "r");
  ASSERT_NE(child, nullptr);
  std::string output;
  std::array<char, 4096> buffer;
  while (size_t n = fread(buffer.data(), 1, buffer.size(), child)) output.append(buffer.data(), n);
  int status = pclose(child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  // Guards against a filter that matched nothing: the cases really ran.
  EXPECT_NE(output.find("[  PASSED  ] "), std::string::npos) << output;
  EXPECT_EQ(output.find("[  PASSED  ] 0 tests"), std::string::npos) << output;
}

}  // namespace
