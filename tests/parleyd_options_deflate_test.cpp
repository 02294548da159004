// parleyd's permessage-deflate options (--deflate, --deflate-threshold).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chat/parleyd_options.h"

namespace {

using chat::parse_parleyd_options;
using chat::ParleydOptions;

TEST(ParleydDeflateOptions, DefaultsAreOnWith64Bytes) {
  ParleydOptions o;
  std::string error;
  ASSERT_TRUE(parse_parleyd_options({}, o, error)) << error;
  EXPECT_TRUE(o.deflate);
  EXPECT_EQ(o.deflate_threshold, 64u);
}

TEST(ParleydDeflateOptions, ParsesValues) {
  ParleydOptions o;
  std::string error;
  ASSERT_TRUE(parse_parleyd_options({"--deflate", "off", "--deflate-threshold", "1K"}, o, error)) << error;
  EXPECT_FALSE(o.deflate);
  EXPECT_EQ(o.deflate_threshold, 1024u);
  ASSERT_TRUE(parse_parleyd_options({"--deflate", "on", "--deflate-threshold", "0"}, o, error)) << error;
  EXPECT_TRUE(o.deflate);
  EXPECT_EQ(o.deflate_threshold, 0u);
}

TEST(ParleydDeflateOptions, RejectsBadValuesWithOneLine) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--deflate", "yes"}, {"--deflate"}, {"--deflate-threshold", "-1"},
                                             {"--deflate-threshold", "2G"}, {"--deflate-threshold", "x"}}) {
    ParleydOptions o;
    std::string error;
    EXPECT_FALSE(parse_parleyd_options(args, o, error)) << args[0];
    EXPECT_NE(error.find(args[0]), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}

TEST(ParleydDeflateOptions, HelpListsThem) {
  const std::string usage = chat::parleyd_usage();
  EXPECT_NE(usage.find("--deflate on|off"), std::string::npos);
  EXPECT_NE(usage.find("--deflate-threshold BYTES"), std::string::npos);
}

}  // namespace
