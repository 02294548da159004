#pragma once
// parleyd's effective configuration: the option table (chat/parleyd_options.h) filled from
// defaults, the --config TOML file, PARLEY_* environment variables and the command line, in
// that order of increasing precedence (flag > env > file > default), with where each value came
// from; --check-config's listing; and what a SIGHUP reload may change (docs/operations.md).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chat/parleyd_options.h"

namespace chat {

// Where an option's effective value came from.
struct OptionSource {
  enum class Kind : uint8_t { kDefault, kFile, kEnv, kFlag };
  Kind kind = Kind::kDefault;
  std::string where;  // "parley.toml:12", "PARLEY_RATE_LIMIT" or "--rate-limit"; empty: default
};

struct ParleydConfig {
  ParleydOptions options;
  std::vector<OptionSource> sources;      // one per parleyd_option_specs() entry, same order
  std::vector<std::string> unknown_env;   // PARLEY_* variables that name no option (warned)
  // The source of option `name`; a default source for an unknown name.
  const OptionSource& source_of(std::string_view name) const;
};

// Builds the configuration from `args` (argv without the program), `env` ("NAME=value", e.g.
// process_environment()) and the file named by --config or PARLEY_CONFIG. False with `error`
// set to one line naming the option and its source (file:line, env var or flag) on an unknown
// option or key, a bad value, an unreadable or malformed file, or options that conflict.
// Unknown PARLEY_* variables are not errors (the environment is shared with other programs);
// they are listed in `unknown_env`.
bool load_parleyd_config(const std::vector<std::string>& args, const std::vector<std::string>& env,
                         ParleydConfig& out, std::string& error);

// This process's environment as "NAME=value" strings.
std::vector<std::string> process_environment();

// --check-config's output: a TOML document of every option's effective value, each with its
// source as a comment; secrets (kOptionSecret) show as set or unset, never their value.
std::string render_effective_config(const ParleydConfig& config);

// One option whose value differs between the running configuration and a reloaded one.
struct ConfigChange {
  const OptionSpec* spec = nullptr;
  std::string from;
  std::string to;
  std::string why;  // for a change that needs a restart: why it cannot be applied live
};

// What a reload found: changes that can be applied now and changes that need a restart.
struct ConfigDiff {
  std::vector<ConfigChange> applied;
  std::vector<ConfigChange> need_restart;
  bool empty() const { return applied.empty() && need_restart.empty(); }
};

// Compares `running` with `reloaded`. An option is applied live when its spec says Reload::kLive
// and the change keeps the server's structure: a per-address cap or rate limit switched between
// 0 (off) and on, and a --max-text whose hard message size exceeds the route's, need a restart.
ConfigDiff diff_parleyd_config(const ParleydOptions& running, const ParleydOptions& reloaded);

// One line for stderr: "changed rate-limit 20 -> 5; needs a restart: workers 1 -> 2", or
// "no change". Secret values are not shown.
std::string describe_config_diff(const ConfigDiff& diff);

}  // namespace chat
