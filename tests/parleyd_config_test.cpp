// Configuration layering (chat/parleyd/config.h): precedence flag > env > file > default, one
// error line per class of mistake naming the option and its source, --check-config's listing,
// and what a reload may change. The process-level checks (exit codes, the example file) are in
// parleyd_check_config_test.cpp.
#include "chat/parleyd/config.h"
#include "chat/histogram.h"
#include "chat/parleyd/operations.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace {

using chat::OptionSource;
using chat::ParleydConfig;

// A TOML file in the temp directory, removed by the destructor.
class TempToml {
 public:
  explicit TempToml(const std::string& text) {
    char name[] = "/tmp/parley_config_XXXXXX.toml";
    int fd = mkstemps(name, 5);
    path_ = name;
    std::string body = text;
    if (fd >= 0) {
      EXPECT_EQ(write(fd, body.data(), body.size()), static_cast<ssize_t>(body.size()));
      close(fd);
    }
  }
  ~TempToml() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Loaded {
  bool ok = false;
  ParleydConfig config;
  std::string error;
};

Loaded load(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  Loaded out;
  out.ok = chat::load_parleyd_config(args, env, out.config, out.error);
  return out;
}

// A failure whose one line contains every string of `parts`.
void expect_error(const Loaded& loaded, const std::vector<std::string>& parts) {
  ASSERT_FALSE(loaded.ok);
  EXPECT_EQ(loaded.error.find('\n'), std::string::npos) << loaded.error;
  for (const std::string& part : parts) EXPECT_NE(loaded.error.find(part), std::string::npos) << loaded.error;
}

TEST(ParleydConfig, PrecedenceFlagOverEnvOverFileOverDefault) {
  TempToml file("rate-limit = 7\nmax-text = \"8K\"\nhistory = 11\nlog-level = \"warn\"\n");
  Loaded l = load({"--config", file.path(), "--rate-limit", "9"},
                  {"PARLEY_RATE_LIMIT=8", "PARLEY_MAX_TEXT=1000", "HOME=/root"});
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_EQ(l.config.options.rate_limit, 9u);         // flag beats env and file
  EXPECT_EQ(l.config.options.max_text_bytes, 1000u);  // env beats file
  EXPECT_EQ(l.config.options.history_size, 11u);      // file beats default
  EXPECT_EQ(l.config.options.log_level, "warn");
  EXPECT_EQ(l.config.options.rate_burst, 40u);        // default
  EXPECT_EQ(l.config.source_of("rate-limit").where, "--rate-limit");
  EXPECT_EQ(l.config.source_of("max-text").where, "PARLEY_MAX_TEXT");
  EXPECT_EQ(l.config.source_of("history").where, file.path() + ":3");
  EXPECT_EQ(l.config.source_of("rate-burst").kind, OptionSource::Kind::kDefault);
}

TEST(ParleydConfig, ConfigFileFromEnvironmentAndFlagWins) {
  TempToml a("history = 1\n");
  TempToml b("history = 2\n");
  Loaded l = load({}, {"PARLEY_CONFIG=" + a.path()});
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_EQ(l.config.options.history_size, 1u);
  l = load({"--config", b.path()}, {"PARLEY_CONFIG=" + a.path()});
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_EQ(l.config.options.history_size, 2u);
}

TEST(ParleydConfig, FileValueTypes) {
  TempToml file(
      "# a comment\n"
      "reuseport = true\n"
      "deflate = false\n"          // an on|off option takes a boolean too
      "echo = \"off\"\n"
      "slow-consumer = \"drop\"\n"
      "allow-origin = [\"https://a.example\", \"https://*.b.example\"]\n"
      "max-memory = \"512M\"\n"
      "workers = 1\n");
  Loaded l = load({"--config", file.path()});
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_TRUE(l.config.options.reuse_port);
  EXPECT_FALSE(l.config.options.deflate);
  EXPECT_FALSE(l.config.options.echo);
  EXPECT_TRUE(l.config.options.slow_consumer_drop);
  EXPECT_EQ(l.config.options.allow_origin, "https://a.example,https://*.b.example");
  EXPECT_EQ(l.config.options.max_memory, 512u << 20);
}

TEST(ParleydConfig, RepeatedListFlagsAddButReplaceLowerLayers) {
  Loaded l = load({"--allow-origin", "https://a.example", "--allow-origin", "https://b.example"},
                  {"PARLEY_ALLOW_ORIGIN=https://env.example"});
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_EQ(l.config.options.allow_origin, "https://a.example,https://b.example");
}

TEST(ParleydConfig, EnvironmentSwitches) {
  Loaded l = load({}, {"PARLEY_REUSEPORT=1", "PARLEY_DENY_MISSING_ORIGIN=true"});
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_TRUE(l.config.options.reuse_port);
  EXPECT_TRUE(l.config.options.deny_missing_origin);
  expect_error(load({}, {"PARLEY_REUSEPORT=maybe"}), {"PARLEY_REUSEPORT", "reuseport", "'maybe'", "true or false"});
}

// Every class of error, each one line naming the option and where it came from.
TEST(ParleydConfig, ErrorsNameOptionAndSource) {
  // Flags: unknown, missing value, bad value.
  expect_error(load({"--rate-limt", "5"}), {"unknown option '--rate-limt'"});
  expect_error(load({"--rate-limit"}), {"--rate-limit", "needs a value"});
  expect_error(load({"--rate-limit", "fast"}), {"invalid --rate-limit 'fast'", "0 (off) to 1000000"});
  // Environment: bad value, bad choice.
  expect_error(load({}, {"PARLEY_MAX_TEXT=-3"}), {"PARLEY_MAX_TEXT: invalid max-text '-3'", "1 to 64M"});
  expect_error(load({}, {"PARLEY_LOG_LEVEL=loud"}),
               {"PARLEY_LOG_LEVEL: invalid log-level 'loud'", "error, warn, info or debug"});
  // File: unknown key, bad value, wrong type, syntax error, missing file; with file:line.
  TempToml unknown("history = 5\nrate-limt = 5\n");
  expect_error(load({"--config", unknown.path()}), {unknown.path() + ":2", "unknown option 'rate-limt'"});
  TempToml bad("\n\nworkers = 0\n");
  expect_error(load({"--config", bad.path()}), {bad.path() + ":3: invalid workers '0'", "1 to 256"});
  TempToml type("rate-limit = 1.5\n");
  expect_error(load({"--config", type.path()}), {type.path() + ":1: invalid rate-limit", "an integer"});
  TempToml syntax("history = 5\nrate-limit = \n");
  expect_error(load({"--config", syntax.path()}), {syntax.path() + ":2:"});
  TempToml section("[server]\nhistory = 5\n");
  expect_error(load({"--config", section.path()}), {section.path() + ":1", "unknown option 'server'"});
  expect_error(load({"--config", "/nonexistent/parley.toml"}), {"cannot read config file /nonexistent/parley.toml"});
  TempToml nested("config = \"other.toml\"\n");
  expect_error(load({"--config", nested.path()}), {nested.path() + ":1", "unknown option 'config'"});
  // Combinations name both options with their sources.
  TempToml tls("tls-cert = \"c.pem\"\n");
  expect_error(load({"--config", tls.path()}), {"tls-cert (" + tls.path() + ":1)", "--tls-key"});
  expect_error(load({"--workers", "2"}, {"PARLEY_STORE=x.db"}), {"store (PARLEY_STORE)", "--workers"});
}

TEST(ParleydConfig, UnknownEnvironmentVariablesAreListedNotFatal) {
  Loaded l = load({}, {"PARLEY_BUILD_DIR=build", "PARLEY_RATE_LIMT=3"});
  ASSERT_TRUE(l.ok) << l.error;
  ASSERT_EQ(l.config.unknown_env.size(), 2u);
  EXPECT_NE(chat::render_effective_config(l.config).find("PARLEY_RATE_LIMT names no option"), std::string::npos);
}

TEST(ParleydConfig, EffectiveConfigListsEveryValueWithItsSource) {
  TempToml file("history = 12\n");
  Loaded l = load({"--config", file.path(), "--max-text", "2K"}, {"PARLEY_RATE_LIMIT=3"});
  ASSERT_TRUE(l.ok) << l.error;
  const std::string text = chat::render_effective_config(l.config);
  EXPECT_NE(text.find("(config file " + file.path() + ")"), std::string::npos) << text;
  auto line_of = [&](const std::string& key) {
    size_t at = text.find("\n" + key + " = ");
    return at == std::string::npos ? std::string() : text.substr(at + 1, text.find('\n', at + 1) - at - 1);
  };
  EXPECT_EQ(line_of("history").rfind("history = 12", 0), 0u);
  EXPECT_NE(line_of("history").find("# " + file.path() + ":1"), std::string::npos) << line_of("history");
  EXPECT_NE(line_of("max-text").find("2048"), std::string::npos);
  EXPECT_NE(line_of("max-text").find("# --max-text, reloadable"), std::string::npos) << line_of("max-text");
  EXPECT_NE(line_of("rate-limit").find("# PARLEY_RATE_LIMIT"), std::string::npos);
  EXPECT_NE(line_of("listen").find("\"127.0.0.1:8080\""), std::string::npos);
  EXPECT_NE(line_of("listen").find("# default"), std::string::npos);
  EXPECT_EQ(line_of("check-config"), "");
  // Every option of the table that a file may hold is listed.
  for (const chat::OptionSpec& spec : chat::parleyd_option_specs()) {
    if (spec.flags & (chat::kOptionNoFile | chat::kOptionNoEnv)) continue;
    const bool listed = !line_of(std::string(spec.name)).empty() ||
                        text.find("\n# " + std::string(spec.name) + " = (") != std::string::npos;
    EXPECT_TRUE(listed) << spec.name;
  }
}

TEST(ParleydConfig, EffectiveConfigReadsBackAsAConfigFile) {
  Loaded first = load({"--rate-limit", "3", "--allow-origin", "https://a.example", "--slow-consumer", "drop",
                       "--max-memory", "0", "--reuseport"});
  ASSERT_TRUE(first.ok) << first.error;
  TempToml file(chat::render_effective_config(first.config));
  Loaded again = load({"--config", file.path()});
  ASSERT_TRUE(again.ok) << again.error;
  for (const chat::OptionSpec& spec : chat::parleyd_option_specs()) {
    if (spec.flags & (chat::kOptionNoFile | chat::kOptionNoEnv)) continue;
    EXPECT_EQ(chat::parleyd_option_text(spec, again.config.options), chat::parleyd_option_text(spec, first.config.options))
        << spec.name;
  }
}

TEST(ParleydConfig, ReloadDiffSplitsLiveFromRestart) {
  chat::ParleydOptions running;
  chat::ParleydOptions reloaded = running;
  EXPECT_EQ(chat::describe_config_diff(chat::diff_parleyd_config(running, reloaded)), "no change");
  reloaded.rate_limit = 5;
  reloaded.max_connections_per_ip = 2;
  reloaded.log_level = "debug";
  reloaded.workers = 3;
  reloaded.max_text_bytes = 1 << 20;  // larger hard size than the route was built with
  chat::ConfigDiff diff = chat::diff_parleyd_config(running, reloaded);
  ASSERT_EQ(diff.applied.size(), 3u);
  ASSERT_EQ(diff.need_restart.size(), 2u);
  const std::string line = chat::describe_config_diff(diff);
  EXPECT_NE(line.find("changed max-connections-per-ip 1000 -> 2, rate-limit 20 -> 5, log-level info -> debug"),
            std::string::npos) << line;
  EXPECT_NE(line.find("needs a restart (kept the running value): workers 1 -> 3 (read at start), max-text"),
            std::string::npos) << line;
  // Switching a rate limit between off and on changes the server's structure: restart.
  chat::ParleydOptions off = running;
  off.rate_limit = 0;
  diff = chat::diff_parleyd_config(running, off);
  ASSERT_EQ(diff.need_restart.size(), 1u);
  EXPECT_TRUE(diff.applied.empty());
}

TEST(ParleydConfig, HelpListsEveryFlagOfTheTable) {
  const std::string usage = chat::parleyd_usage();
  for (const chat::OptionSpec& spec : chat::parleyd_option_specs()) {
    if (spec.flags & chat::kOptionEnvOnly) continue;
    EXPECT_NE(usage.find("  --" + std::string(spec.name) + (spec.value.empty() ? "" : " ")), std::string::npos)
        << spec.name;
  }
}

}  // namespace

namespace {

TEST(ParleydHistogram, BucketsAreCumulativeInSecondsWithSumAndCount) {
  chat::Histogram histogram{1000, 10000};
  for (uint64_t us : {0u, 1000u, 1001u, 9999u, 10000u, 10001u, 2000000u}) histogram.record(us);
  EXPECT_EQ(histogram.bucket(0), 2u);  // <= 1 ms: 0 and exactly 1000 us
  EXPECT_EQ(histogram.bucket(1), 3u);
  EXPECT_EQ(histogram.bucket(2), 2u);  // +Inf
  std::string out;
  histogram.render(out, "t_seconds", "help");
  EXPECT_EQ(out,
            "# HELP t_seconds help\n# TYPE t_seconds histogram\n"
            "t_seconds_bucket{le=\"0.001\"} 2\nt_seconds_bucket{le=\"0.01\"} 5\nt_seconds_bucket{le=\"+Inf\"} 7\n"
            "t_seconds_sum 2.032001\nt_seconds_count 7\n");
}

TEST(ParleydMetricsLabels, EverySampleGetsTheWorkerLabel) {
  EXPECT_EQ(chat::label_metrics("# HELP a x\n# TYPE a gauge\na 1\nb{le=\"1\"} 2\n", "worker=\"3\""),
            "# HELP a x\n# TYPE a gauge\na{worker=\"3\"} 1\nb{worker=\"3\",le=\"1\"} 2\n");
}

}  // namespace
