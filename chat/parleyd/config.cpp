#include "chat/parleyd/config.h"

#include <cctype>
#include <cstring>
#include <optional>

#include <toml++/toml.h>

#include "chat/chat_app.h"

extern char** environ;

namespace chat {

namespace {

std::string env_name(std::string_view option) {
  std::string out = "PARLEY_";
  for (char c : option) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool is_switch(const OptionSpec& spec) {
  return std::holds_alternative<bool ParleydOptions::*>(spec.field) && spec.choices.empty();
}

size_t index_of(const OptionSpec& spec) { return static_cast<size_t>(&spec - parleyd_option_specs().data()); }

// The error line for a bad value: "<where>: invalid <name> '<value>' (<why>)"; a flag is named as
// such and needs no location.
std::string bad_value(const OptionSpec& spec, const OptionSource& source, std::string_view value,
                      const std::string& why) {
  std::string line;
  if (source.kind == OptionSource::Kind::kFlag) {
    line = "invalid --" + std::string(spec.name);
  } else {
    line = source.where + ": invalid " + std::string(spec.name);
  }
  if (spec.flags & kOptionSecret) return line + " (" + why + ")";
  return line + " '" + std::string(value) + "' (" + why + ")";
}

// How an option is named in a cross-option error: "--tls-cert" or "tls-cert (parley.toml:3)".
std::string named(const ParleydConfig& config, std::string_view name) {
  const OptionSource& source = config.source_of(name);
  if (source.kind == OptionSource::Kind::kFlag || source.kind == OptionSource::Kind::kDefault) {
    return "--" + std::string(name);
  }
  return std::string(name) + " (" + source.where + ")";
}

// Applies one value from `source`; a kOptionList value adds to one from the same layer.
bool apply(ParleydConfig& config, const OptionSpec& spec, std::string_view value, OptionSource source,
           std::string& error) {
  OptionSource& current = config.sources[index_of(spec)];
  const bool append = (spec.flags & kOptionList) && current.kind == source.kind;
  std::string why;
  if (!set_parleyd_option(spec, value, append, config.options, why)) {
    error = bad_value(spec, source, value, why);
    return false;
  }
  current = std::move(source);
  return true;
}

// A TOML value as the text a flag would carry; nullopt (with `why`) for a type no option takes.
std::optional<std::string> toml_text(const OptionSpec& spec, const toml::node& node, std::string& why) {
  if (auto s = node.value<std::string>(); s && node.is_string()) return *s;
  if (node.is_integer()) return std::to_string(*node.value<int64_t>());
  if (node.is_boolean()) {
    bool b = *node.value<bool>();
    if (spec.choices == "off|on") return std::string(b ? "on" : "off");
    return std::string(b ? "true" : "false");
  }
  if (node.is_array() && (spec.flags & kOptionList)) {
    std::string joined;
    for (const toml::node& item : *node.as_array()) {
      if (!item.is_string()) {
        why = "a list of strings";
        return std::nullopt;
      }
      joined += (joined.empty() ? "" : ",") + *item.value<std::string>();
    }
    return joined;
  }
  why = is_switch(spec) ? "true or false" : (spec.flags & kOptionList) ? "a string or a list of strings"
        : std::holds_alternative<std::string ParleydOptions::*>(spec.field) || !spec.choices.empty()
            ? "a string"
            : "an integer, or a string with a K/M/G suffix";
  return std::nullopt;
}

bool load_file(ParleydConfig& config, const std::string& path, std::string& error) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source();
    std::string description(e.description());
    if (where.begin.line == 0) {  // not a syntax error: the file could not be read
      error = "cannot read config file " + path + ": " + description;
    } else {
      error = path + ":" + std::to_string(where.begin.line) + ": " + description;
    }
    return false;
  }
  for (auto&& [key, node] : table) {
    const std::string location = path + ":" + std::to_string(key.source().begin.line);
    const OptionSpec* spec = find_parleyd_option(key.str());
    if (spec == nullptr || (spec->flags & (kOptionNoFile | kOptionEnvOnly))) {
      error = location + ": unknown option '" + std::string(key.str()) + "' (keys are the option names of --help)";
      return false;
    }
    std::string why;
    std::optional<std::string> text = toml_text(*spec, node, why);
    if (!text) {
      error = location + ": invalid " + std::string(spec->name) + " (expected " + why + ")";
      return false;
    }
    if (!apply(config, *spec, *text, {OptionSource::Kind::kFile, location}, error)) return false;
  }
  return true;
}

// The syntax of argv: which options, with which values, in order; the values are checked later.
struct FlagValue {
  const OptionSpec* spec;
  std::string value;
};

bool scan_flags(const std::vector<std::string>& args, ParleydOptions& options, std::vector<FlagValue>& out,
                std::string& error) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      options.show_help = true;
      continue;
    }
    if (arg == "--version") {
      options.show_version = true;
      continue;
    }
    const OptionSpec* spec = arg.size() > 2 && arg.compare(0, 2, "--") == 0 ? find_parleyd_option(arg.substr(2))
                                                                             : nullptr;
    if (spec == nullptr || (spec->flags & kOptionEnvOnly)) {
      error = "unknown option '" + arg + "' (see --help)";
      return false;
    }
    if (is_switch(*spec)) {
      out.push_back({spec, "true"});
      continue;
    }
    if (i + 1 >= args.size()) {
      error = "option " + arg + " needs a value";
      return false;
    }
    out.push_back({spec, args[++i]});
  }
  return true;
}

// Rules between options, checked once every layer is in.
bool check_combinations(ParleydConfig& config, std::string& error) {
  ParleydOptions& o = config.options;
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    error = o.tls_cert_file.empty() ? named(config, "tls-key") + " needs --tls-cert too"
                                    : named(config, "tls-cert") + " needs --tls-key too";
    error += " (--tls-cert and --tls-key must be given together)";
    return false;
  }
  o.store_given = config.source_of("store").kind != OptionSource::Kind::kDefault;
  if (!o.redis.empty()) {
    // Issue 15: with Redis its streams are the history; a second store would disagree on seqs.
    if (o.store_given && o.store != "none") {
      error = named(config, "store") + " with " + named(config, "redis") +
              ": --redis and --store are exclusive: with --redis the Redis streams are the history";
      return false;
    }
    o.store = "none";
  }
  if (o.workers > 1 && o.store != "none") {
    // Rooms are per worker, so workers sharing one store would interleave unrelated seqs: the
    // default store gives way to memory only; an explicit one is an error.
    if (o.store_given) {
      error = named(config, "store") + " with " + named(config, "workers") +
              " > 1: --workers > 1 needs --store none (rooms are per worker; one store file cannot serve several)";
      return false;
    }
    o.store = "none";
  }
  return true;
}

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// The TOML spelling of an option's value.
std::string toml_value(const OptionSpec& spec, const ParleydOptions& options) {
  std::string text = parleyd_option_text(spec, options);
  if (is_switch(spec) || std::holds_alternative<uint32_t ParleydOptions::*>(spec.field) ||
      std::holds_alternative<uint64_t ParleydOptions::*>(spec.field)) {
    return text;
  }
  return quoted(text);
}

// Why a live option's change cannot be applied to a running server, or empty when it can.
std::string restart_reason(std::string_view name, const ParleydOptions& a, const ParleydOptions& b) {
  auto flips = [](uint64_t x, uint64_t y) { return (x == 0) != (y == 0); };
  if (name == "max-connections-per-ip" || name == "max-handshakes-per-ip") {
    // WsServer keeps per-address counts only while one of the two caps is on.
    bool before = a.max_connections_per_ip != 0 || a.max_handshakes_per_ip != 0;
    bool after = b.max_connections_per_ip != 0 || b.max_handshakes_per_ip != 0;
    if (before != after) return "turning per-address caps on or off";
  }
  if (name == "auth-secret" && a.auth_secret_file.empty() != b.auth_secret_file.empty()) {
    return "turning token authentication on or off";
  }
  if (name == "rate-limit" && flips(a.rate_limit, b.rate_limit)) return "turning the rate limit on or off";
  if (name == "handshake-rate" && flips(a.handshake_rate, b.handshake_rate)) return "turning it on or off";
  if (name == "max-text" && chat_hard_message_size(b.max_text_bytes) > chat_hard_message_size(a.max_text_bytes)) {
    return "the /chat message size limit was set at start";
  }
  return {};
}

const OptionSource kDefaultSource;

}  // namespace

const OptionSource& ParleydConfig::source_of(std::string_view name) const {
  const OptionSpec* spec = find_parleyd_option(name);
  if (spec == nullptr || index_of(*spec) >= sources.size()) return kDefaultSource;
  return sources[index_of(*spec)];
}

std::vector<std::string> process_environment() {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) out.emplace_back(*e);
  return out;
}

bool load_parleyd_config(const std::vector<std::string>& args, const std::vector<std::string>& env,
                         ParleydConfig& out, std::string& error) {
  ParleydConfig config;
  config.sources.assign(parleyd_option_specs().size(), OptionSource{});
  std::vector<FlagValue> flags;
  if (!scan_flags(args, config.options, flags, error)) return false;

  // PARLEY_* variables that name an option (the last one wins, as getenv would say).
  std::vector<std::pair<const OptionSpec*, std::string>> env_values;
  for (const std::string& entry : env) {
    if (entry.rfind("PARLEY_", 0) != 0) continue;
    if (entry.rfind("PARLEY_REDIS_PASSWORD=", 0) == 0) continue;  // read by --redis (issue 15), not an option
    size_t equals = entry.find('=');
    std::string name = entry.substr(0, equals);
    const OptionSpec* match = nullptr;
    for (const OptionSpec& spec : parleyd_option_specs()) {
      if (!(spec.flags & kOptionNoEnv) && env_name(spec.name) == name) match = &spec;
    }
    if (match == nullptr) {
      config.unknown_env.push_back(name);
      continue;
    }
    env_values.emplace_back(match, equals == std::string::npos ? std::string() : entry.substr(equals + 1));
  }

  // The file comes from the last --config, else PARLEY_CONFIG.
  std::string file;
  OptionSource file_source;
  for (const FlagValue& flag : flags) {
    if (flag.spec->name == "config") file = flag.value, file_source = {OptionSource::Kind::kFlag, "--config"};
  }
  if (file_source.kind == OptionSource::Kind::kDefault) {
    for (const auto& [spec, value] : env_values) {
      if (spec->name == "config") file = value, file_source = {OptionSource::Kind::kEnv, "PARLEY_CONFIG"};
    }
  }
  if (file_source.kind != OptionSource::Kind::kDefault) {
    if (!apply(config, *find_parleyd_option("config"), file, file_source, error)) return false;
    if (!load_file(config, file, error)) return false;
  }
  for (const auto& [spec, value] : env_values) {
    if (!apply(config, *spec, value, {OptionSource::Kind::kEnv, env_name(spec->name)}, error)) return false;
  }
  for (const FlagValue& flag : flags) {
    if (!apply(config, *flag.spec, flag.value, {OptionSource::Kind::kFlag, "--" + std::string(flag.spec->name)},
               error)) {
      return false;
    }
  }
  if (!check_combinations(config, error)) return false;
  out = std::move(config);
  return true;
}

bool parse_parleyd_options(const std::vector<std::string>& args, ParleydOptions& out, std::string& error) {
  ParleydConfig config;
  if (!load_parleyd_config(args, {}, config, error)) return false;
  out = config.options;
  return true;
}

std::string render_effective_config(const ParleydConfig& config) {
  std::string out = "# parleyd " + std::string(kParleyVersion) + " effective configuration";
  out += config.options.config_file.empty() ? " (no config file)\n" : " (config file " + config.options.config_file + ")\n";
  out += "# precedence: flag > PARLEY_* environment > config file > default\n";
  const auto specs = parleyd_option_specs();
  for (size_t i = 0; i < specs.size(); ++i) {
    const OptionSpec& spec = specs[i];
    if (spec.flags & (kOptionNoFile | kOptionNoEnv)) continue;  // --config, --check-config
    const OptionSource& source = i < config.sources.size() ? config.sources[i] : kDefaultSource;
    std::string line;
    if (spec.flags & kOptionSecret) {
      line = "# " + std::string(spec.name) + " = " + (parleyd_option_text(spec, config.options).empty()
                                                          ? "(not set)" : "(set, not shown)");
    } else if (std::holds_alternative<std::string ParleydOptions::*>(spec.field) &&
               parleyd_option_text(spec, config.options).empty()) {
      line = "# " + std::string(spec.name) + " = (not set)";  // "" is no valid value: commented
    } else {
      line = std::string(spec.name) + " = " + toml_value(spec, config.options);
    }
    if (line.size() < 40) line.resize(40, ' ');
    out += line + "  # " + (source.kind == OptionSource::Kind::kDefault ? "default" : source.where);
    if (spec.reload == Reload::kLive) out += ", reloadable";
    out += '\n';
  }
  for (const std::string& name : config.unknown_env) {
    out += "# warning: " + name + " names no option (ignored)\n";
  }
  return out;
}

ConfigDiff diff_parleyd_config(const ParleydOptions& running, const ParleydOptions& reloaded) {
  ConfigDiff diff;
  for (const OptionSpec& spec : parleyd_option_specs()) {
    if (spec.flags & kOptionNoEnv) continue;  // --check-config
    ConfigChange change{&spec, parleyd_option_text(spec, running), parleyd_option_text(spec, reloaded), {}};
    if (change.from == change.to) continue;
    if (spec.reload != Reload::kLive) {
      change.why = "read at start";
      diff.need_restart.push_back(std::move(change));
      continue;
    }
    change.why = restart_reason(spec.name, running, reloaded);
    (change.why.empty() ? diff.applied : diff.need_restart).push_back(std::move(change));
  }
  return diff;
}

std::string describe_config_diff(const ConfigDiff& diff) {
  if (diff.empty()) return "no change";
  auto list = [](const std::vector<ConfigChange>& changes, bool with_why) {
    std::string out;
    for (const ConfigChange& c : changes) {
      if (!out.empty()) out += ", ";
      out += std::string(c.spec->name);
      if (!(c.spec->flags & kOptionSecret)) out += " " + (c.from.empty() ? "\"\"" : c.from) + " -> " + (c.to.empty() ? "\"\"" : c.to);
      if (with_why && !c.why.empty()) out += " (" + c.why + ")";
    }
    return out;
  };
  std::string out;
  if (!diff.applied.empty()) out = "changed " + list(diff.applied, false);
  if (!diff.need_restart.empty()) {
    out += (out.empty() ? "" : "; ") + std::string("needs a restart (kept the running value): ") +
           list(diff.need_restart, true);
  }
  return out;
}

}  // namespace chat
