// parleyd's session-resume and retention options (issue 14): --resume-window (seconds, 0 off)
// and --history-max-age (a duration: 30d, 12h, 90m, 45s, bare seconds; 0 off).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chat/parleyd_options.h"

namespace {

bool parse(const std::vector<std::string>& args, chat::ParleydOptions& options, std::string& error) {
  return chat::parse_parleyd_options(args, options, error);
}

TEST(ResumeOptionsTest, DefaultsAreTwoMinutesOfResumeAndNoAgeLimit) {
  chat::ParleydOptions options;
  std::string error;
  ASSERT_TRUE(parse({}, options, error)) << error;
  EXPECT_EQ(options.resume_window_seconds, 120u);
  EXPECT_EQ(options.history_max_age_seconds, 0u);
}

TEST(ResumeOptionsTest, ValuesParse) {
  chat::ParleydOptions options;
  std::string error;
  ASSERT_TRUE(parse({"--resume-window", "0", "--history-max-age", "30d"}, options, error)) << error;
  EXPECT_EQ(options.resume_window_seconds, 0u);
  EXPECT_EQ(options.history_max_age_seconds, 30u * 86400);
  uint64_t seconds = 0;
  for (auto [text, expected] : std::vector<std::pair<std::string, uint64_t>>{
           {"0", 0}, {"45", 45}, {"45s", 45}, {"90m", 5400}, {"12h", 43200}, {"7d", 604800}}) {
    ASSERT_TRUE(chat::parse_duration_seconds(text, seconds)) << text;
    EXPECT_EQ(seconds, expected) << text;
  }
}

TEST(ResumeOptionsTest, BadValuesNameTheOption) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--resume-window", "-1"}, {"--resume-window", "86401"}, {"--resume-window", "2m"},
           {"--history-max-age", ""}, {"--history-max-age", "d"}, {"--history-max-age", "30w"},
           {"--history-max-age", "-5s"}, {"--history-max-age", "99999999999d"}, {"--history-max-age"}}) {
    chat::ParleydOptions options;
    std::string error;
    EXPECT_FALSE(parse(args, options, error)) << args[0];
    EXPECT_NE(error.find(args[0]), std::string::npos) << error;
  }
}

TEST(ResumeOptionsTest, HelpListsThem) {
  std::string usage = chat::parleyd_usage();
  EXPECT_NE(usage.find("--resume-window SECONDS"), std::string::npos);
  EXPECT_NE(usage.find("--history-max-age AGE"), std::string::npos);
}

}  // namespace
