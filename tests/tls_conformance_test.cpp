// Autobahn cases 1.* to 10.* over wss://: runs this test binary's own EchoConformance suites
// (tests/echo_conformance_test.cpp) again in a child process with PARLEY_ECHO_OVER_TLS=1, so
// every case is checked through TLS (octet chops become one-byte records) without a second copy.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "tests/support/shell_command.h"

namespace {

TEST(TlsConformance, AutobahnCases1To10PassOverWss) {
  if (std::getenv("PARLEY_ECHO_OVER_TLS") != nullptr) GTEST_SKIP() << "already the TLS run";
  std::string output;
  const int status = parley_test::rerun_this_binary("PARLEY_ECHO_OVER_TLS=1", "EchoConformance*:-EchoConformanceHttp*",
                                                    output);
  EXPECT_EQ(status, 0) << output;
  // Guards against a filter that matched nothing: the cases really ran.
  EXPECT_NE(output.find("[  PASSED  ] "), std::string::npos) << output;
  EXPECT_EQ(output.find("[  PASSED  ] 0 tests"), std::string::npos) << output;
}

}  // namespace
